#!/bin/bash
# The spnas command line: list, validate (errors with file:line:column, exit status), paths
# resolved against the directory the user ran the command from, and each command's flags.
set -u
SPNAS="$1"
source tests/check.sh

out=$("$SPNAS" list 2>&1)
check "list exits 0" test $? -eq 0
check "list shows kinds and plugins" grep -q "^pipe_step:" <<<"$out"
check "list shows SearchPipeStep" grep -q "  SearchPipeStep  (options: spnas.SearchPipeStepOptions)" <<<"$out"
check "list shows each plugin's defaults" grep -q "defaults: max_sample: 20 objective_keys: \"mAP\" objective_keys: \"params\" max_optimal: 5" <<<"$out"

out=$("$SPNAS" validate --config=tests/testdata/typo.textproto 2>&1); status=$?
check "validate fails on a typo" test $status -ne 0
check "typo reported with file:line:column and field" \
  grep -q "tests/testdata/typo.textproto:7:65: .*no field named \"max_samples\"" <<<"$out"

# Under `bazel run`, relative paths are taken from BUILD_WORKING_DIRECTORY.
dir=$(mktemp -d)
mkdir -p "$dir/sub"
cp tests/testdata/typo.textproto "$dir/sub/pipe.textproto"
out=$(cd / && BUILD_WORKING_DIRECTORY="$dir" "$OLDPWD/$SPNAS" validate --config=sub/pipe.textproto 2>&1)
check "relative config path resolved against BUILD_WORKING_DIRECTORY" grep -q "  $dir/sub/pipe.textproto:7:65" <<<"$out"

out=$("$SPNAS" run 2>&1); status=$?
check "run without --config fails" test $status -ne 0
check "run without --config says so" grep -q -- "--config=FILE is required" <<<"$out"
# A GPU that is not there stops the run before any work, naming how many there are.
gpus=$(nvidia-smi -L 2>/dev/null | grep -c "^GPU" || true)
out=$("$SPNAS" run --config=configs/spnas_quickstart.textproto --local_base_path="$dir/run" --device=cuda:$gpus 2>&1); status=$?
check "run on a missing GPU fails" test $status -ne 0
check "the error names the device and the count" grep -qE "device \"cuda:$gpus\" asked for, but this machine has (no CUDA device|$gpus CUDA device)" <<<"$out"
check "nothing was written" test ! -e "$dir/run/output"
out=$("$SPNAS" run --config=configs/spnas_quickstart.textproto --device=gpu 2>&1); status=$?
check "a malformed device is a config error" grep -q 'general.device must be "cpu", "cuda" or "cuda:N", got "gpu"' <<<"$out"
out=$("$SPNAS" predict --model_dir="$dir" --image=x.png --device=cuda:$gpus 2>&1); status=$?
check "predict on a missing GPU fails clearly" grep -q "asked for, but this machine has" <<<"$out"

out=$("$SPNAS" frobnicate 2>&1); status=$?
check "unknown command fails with usage" test $status -eq 2

# Each command takes only its own flags, and says which they are.
out=$("$SPNAS" run --config=configs/spnas_quickstart.textproto --image=x.png 2>&1); status=$?
check "a flag of another command is an error" test $status -eq 2
check "the error names the flag and the command's flags" grep -q -- \
  "spnas run: --image is not a flag of 'run'; its flags: --config, --local_base_path, --resume, --overwrite, --threads, --device" <<<"$out"
out=$("$SPNAS" list --config=x 2>&1); status=$?
check "list takes no flags" grep -q -- "--config is not a flag of 'list'; its flags: none" <<<"$out"

# A numeric flag given a value it cannot mean is an error naming it, before anything runs.
out=$(timeout 60 "$SPNAS" run --config=configs/spnas_quickstart.textproto --local_base_path="$dir/negative" --threads=-1 2>&1); status=$?
check "--threads=-1 is a usage error" test $status -eq 2
check "the error names --threads" grep -q -- "spnas run: --threads must be >= 0 (0 = all cores), got -1" <<<"$out"
check "nothing ran" test ! -e "$dir/negative"
out=$("$SPNAS" run --config=configs/spnas_quickstart.textproto --local_base_path="$dir/negative" --worker_timeout=nan 2>&1); status=$?
check "--worker_timeout=nan is an error" grep -q -- "--worker_timeout must be a finite number of seconds > 0, got nan" <<<"$out"
out=$("$SPNAS" predict --model_dir="$dir" --image=x.png --id=-2 2>&1); status=$?
check "--id=-2 is an error" grep -q -- "--id must be >= 0" <<<"$out"
out=$("$SPNAS" predict --model_dir="$dir" --image=x.png --score_threshold=1.5 2>&1); status=$?
check "--score_threshold=1.5 is an error" grep -q -- "--score_threshold must be in \[0, 1\], got 1.5" <<<"$out"

# mixed_precision is checked against the device by validate, at the line of the field (here in
# a shared trainer that the steps inherit through `ref`).
sed '0,/^        epochs: 1$/s//        epochs: 1\n        mixed_precision: FLOAT16/' configs/spnas_quickstart.textproto >"$dir/fp16.textproto"
line=$(grep -n "mixed_precision: FLOAT16" "$dir/fp16.textproto" | cut -d: -f1)
out=$("$SPNAS" validate --config="$dir/fp16.textproto" 2>&1); status=$?
check "FLOAT16 on the cpu fails validation" test $status -ne 0
check "the error names the field's line and the device" \
  grep -q "$dir/fp16.textproto:$line:9: mixed_precision FLOAT16 needs a CUDA device, but the configured device (general.device or --device) is \"cpu\"" <<<"$out"
check "the steps that inherit it do not repeat it" test "$(grep -c "mixed_precision FLOAT16" <<<"$out")" -eq 1
out=$("$SPNAS" validate --config="$dir/fp16.textproto" --device=cuda 2>&1)
check "FLOAT16 validates with --device=cuda" test $? -eq 0
sed 's/FLOAT16/BFLOAT16/' "$dir/fp16.textproto" >"$dir/bf16.textproto"
out=$("$SPNAS" validate --config="$dir/bf16.textproto" 2>&1)
check "BFLOAT16 on the cpu validates" test $? -eq 0

for help in "help predict" "predict --help"; do
  out=$("$SPNAS" $help 2>&1); status=$?
  check "$help exits 0" test $status -eq 0
  check "$help lists the command's flags" grep -q -- "  --score_threshold  predict: the lowest score drawn. (default 0.5)" <<<"$out"
  check "$help lists only them" test "$(grep -c -- "^  --" <<<"$out")" -eq 8
done
out=$("$SPNAS" help 2>&1)
check "help lists the commands" grep -q "^  export_coco  a dataset as COCO JSON" <<<"$out"

finish
