#include "spnas/distributed/world.h"

#include <cstdlib>
#include <thread>

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "spnas/core/logging.h"

namespace spnas {
namespace {

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

// The integer in variable `name`, or `fallback` when it is unset.
StatusOr<int> IntEnv(const char* name, int fallback) {
  const std::string text = Env(name);
  if (text.empty()) return fallback;
  char* end = nullptr;
  const long value = std::strtol(text.c_str(), &end, 10);
  if (*end != '\0' || value < 0 || value > 1 << 24) {
    return InvalidArgumentError("environment variable ", name, "='", text, "' is not a non-negative integer");
  }
  return static_cast<int>(value);
}

std::string Text(const std::vector<uint8_t>& bytes) { return std::string(bytes.begin(), bytes.end()); }

}  // namespace

std::string World::Describe() const {
  return StrCat("rank ", rank, " of ", size, " (local rank ", local_rank, "), master ", master_addr, ":", master_port);
}

std::string FirstSlurmHost(const std::string& nodelist) {
  std::string first;
  int depth = 0;
  for (char c : nodelist) {
    if (c == ',' && depth == 0) break;
    depth += c == '[' ? 1 : c == ']' ? -1 : 0;
    first += c;
  }
  const size_t open = first.find('[');
  if (open == std::string::npos) return first;
  // The first number of the first range keeps its zero padding: node[03-05] -> node03.
  std::string range = first.substr(open + 1);
  range = range.substr(0, range.find_first_of(",-]"));
  return first.substr(0, open) + range;
}

StatusOr<World> WorldFromEnvironment() {
  World world;
  const bool torchrun = !Env("WORLD_SIZE").empty();
  const bool slurm = !torchrun && !Env("SLURM_NTASKS").empty() && !Env("SLURM_PROCID").empty();
  if (!torchrun && !slurm) return world;
  const char* rank_var = torchrun ? "RANK" : "SLURM_PROCID";
  const char* size_var = torchrun ? "WORLD_SIZE" : "SLURM_NTASKS";
  SPNAS_ASSIGN_OR_RETURN(world.size, IntEnv(size_var, 1));
  SPNAS_ASSIGN_OR_RETURN(world.rank, IntEnv(rank_var, -1));
  SPNAS_ASSIGN_OR_RETURN(world.local_rank, IntEnv(torchrun ? "LOCAL_RANK" : "SLURM_LOCALID", 0));
  SPNAS_ASSIGN_OR_RETURN(world.master_port, IntEnv("MASTER_PORT", 29500));
  if (world.size < 1) return InvalidArgumentError(size_var, " must be >= 1, got ", world.size);
  if (world.rank < 0 || world.rank >= world.size) {
    return InvalidArgumentError(rank_var, " must be in [0, ", world.size, "), got '", Env(rank_var), "'");
  }
  if (world.master_port == 0 || world.master_port > 65535) {
    return InvalidArgumentError("MASTER_PORT must be a port in [1, 65535], got ", world.master_port);
  }
  world.master_addr = Env("MASTER_ADDR");
  if (world.master_addr.empty() && slurm) world.master_addr = FirstSlurmHost(Env("SLURM_JOB_NODELIST"));
  if (world.master_addr.empty() && world.size > 1) {
    return InvalidArgumentError("MASTER_ADDR is not set: the address of rank 0's machine is needed (", size_var, "=",
                                world.size, ")");
  }
  world.agent_store = Env("TORCHELASTIC_USE_AGENT_STORE") == "True";
  const std::string run = Env(torchrun ? "TORCHELASTIC_RUN_ID" : "SLURM_JOB_ID");
  world.run_id =
      StrCat(run.empty() ? "run" : run, ".",
             Env("TORCHELASTIC_RESTART_COUNT").empty() ? std::string("0") : Env("TORCHELASTIC_RESTART_COUNT"));
  return world;
}

StatusOr<c10::intrusive_ptr<c10d::Store>> ConnectStore(const World& world, std::chrono::seconds timeout) {
  c10d::TCPStoreOptions options;
  options.port = static_cast<uint16_t>(world.master_port);
  options.isServer = world.rank == 0 && !world.agent_store;
  options.waitWorkers = false;
  options.timeout = timeout;
  try {
    auto store = c10::make_intrusive<c10d::TCPStore>(world.master_addr, options);
    return c10::intrusive_ptr<c10d::Store>(
        c10::make_intrusive<c10d::PrefixStore>(StrCat("spnas/", world.run_id), store));
  } catch (const std::exception& e) {
    const std::string what = ExceptionMessage(e);
    if (options.isServer) {
      return AbortedError("rank 0 cannot serve the run's store on port ", world.master_port,
                          " (MASTER_PORT; in use by another program?): ", what.substr(0, what.find('\n')));
    }
    return AbortedError("rank ", world.rank, " cannot reach the master at ", world.master_addr, ":", world.master_port,
                        " (MASTER_ADDR:MASTER_PORT) within ", timeout.count(), " s: ", what.substr(0, what.find('\n')));
  }
}

std::string HelloKey(int rank) { return StrCat("hello/", rank); }

Status AgreeOnRun(c10d::Store& store, const World& world, const std::string& identity, std::chrono::seconds timeout) {
  try {
    store.set(HelloKey(world.rank), identity);
    if (world.rank == 0) {
      std::vector<std::string> keys;
      for (int r = 1; r < world.size; ++r) keys.push_back(HelloKey(r));
      const auto deadline = std::chrono::steady_clock::now() + timeout;
      std::string missing;
      int came = 0;
      while (true) {
        missing.clear();
        came = 0;
        for (int r = 1; r < world.size; ++r) {
          if (store.check({keys[r - 1]})) {
            ++came;
          } else {
            missing += StrCat(missing.empty() ? "" : ", ", r);
          }
        }
        if (missing.empty() || std::chrono::steady_clock::now() > deadline) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      std::string verdict = "ok";
      if (!missing.empty()) {
        verdict = StrCat("rank(s) ", missing, " did not join the run within ", timeout.count(), " s");
      } else {
        for (int r = 1; r < world.size; ++r) {
          const std::string other = Text(store.get(keys[r - 1]));
          if (other != identity) {
            verdict = StrCat("rank ", r, " runs something else than rank 0: rank 0 has ", identity, "; rank ", r,
                             " has ", other, ". Start every rank with the same config and the same spnas build.");
            break;
          }
        }
      }
      store.set("verdict", verdict);
      if (verdict == "ok") return Status::Ok();
      // The store lives in this process (without torchrun's agent): the ranks that came read
      // the verdict before it goes away.
      const auto read_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (store.add("verdict_read", 0) < came && std::chrono::steady_clock::now() < read_deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      return FailedPreconditionError(verdict);
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout + std::chrono::seconds(5);
    while (!store.check({"verdict"})) {
      if (std::chrono::steady_clock::now() > deadline) {
        return AbortedError("rank 0 did not check this rank in within ", timeout.count(), " s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const std::string verdict = Text(store.get("verdict"));
    store.add("verdict_read", 1);
    if (verdict != "ok") return FailedPreconditionError(verdict);
    return Status::Ok();
  } catch (const std::exception& e) {
    const std::string what = ExceptionMessage(e);
    return AbortedError("the run's store failed while ranks met: ", what.substr(0, what.find('\n')));
  }
}

}  // namespace spnas
