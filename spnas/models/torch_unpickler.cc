#include "spnas/models/torch_unpickler.h"

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <variant>

#include "spnas/core/files.h"

namespace spnas {
namespace {

// The values a state-dict pickle builds.
struct Value;
using ValuePtr = std::shared_ptr<Value>;
struct Value {
  enum Kind {
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kTuple,
    kList,
    kDict,
    kGlobal,
    kStorage,
    kTensor,
    kMark
  } kind = kNone;
  int64_t i = 0;
  double f = 0;
  std::string s;                                    // string, or "module.name" of a global
  std::vector<ValuePtr> items;                      // tuple, list
  std::vector<std::pair<ValuePtr, ValuePtr>> dict;  // insertion order kept
  at::Tensor tensor;                                // a storage's data (flat, its dtype)
  // A tensor: a view of `storage`, made once every storage has been read.
  ValuePtr storage;
  int64_t offset = 0;
  std::vector<int64_t> size, stride;
};

at::ScalarType StorageType(const std::string& name) {
  static const std::map<std::string, at::ScalarType> types = {
      {"torch.FloatStorage", at::kFloat},       {"torch.DoubleStorage", at::kDouble}, {"torch.HalfStorage", at::kHalf},
      {"torch.BFloat16Storage", at::kBFloat16}, {"torch.LongStorage", at::kLong},     {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},       {"torch.CharStorage", at::kChar},     {"torch.ByteStorage", at::kByte},
      {"torch.BoolStorage", at::kBool}};
  auto it = types.find(name);
  return it == types.end() ? at::ScalarType::Undefined : it->second;
}

class Unpickler {
 public:
  // `storage` returns the bytes of the storage with this key and element count.
  Unpickler(const std::string& data,
            std::function<StatusOr<at::Tensor>(const std::string& key, at::ScalarType, int64_t)> storage)
      : data_(data), storage_(std::move(storage)) {}
  // A pickle can make cycles (a list appended to itself through the memo): the values are
  // unlinked here, so that shared ownership frees them. Nothing built escapes the unpickler.
  ~Unpickler() {
    for (const ValuePtr& v : made_) {
      v->items.clear();
      v->dict.clear();
      v->storage.reset();
    }
  }

  StatusOr<ValuePtr> Load() {
    while (pos_ < data_.size()) {
      const uint8_t op = Byte();
      switch (op) {
        case 0x80:
          Byte();
          break;  // PROTO
        case 0x95:
          pos_ += 8;
          break;  // FRAME
        case '.':
          return Pop();  // STOP
        case '}':
          Push(Make(Value::kDict));
          break;  // EMPTY_DICT
        case ']':
          Push(Make(Value::kList));
          break;  // EMPTY_LIST
        case ')':
          Push(Make(Value::kTuple));
          break;  // EMPTY_TUPLE
        case '(':
          Push(Make(Value::kMark));
          break;     // MARK
        case 't': {  // TUPLE
          auto t = Make(Value::kTuple);
          t->items = PopToMark();
          Push(t);
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1..3
          auto t = Make(Value::kTuple);
          t->items.resize(op - 0x84);
          for (int k = static_cast<int>(t->items.size()) - 1; k >= 0; --k) t->items[k] = Pop();
          Push(t);
          break;
        }
        case 's': {  // SETITEM
          auto value = Pop(), key = Pop();
          SPNAS_RETURN_IF_ERROR(SetItem(Top(), key, value));
          break;
        }
        case 'u': {  // SETITEMS
          auto items = PopToMark();
          for (size_t k = 0; k + 1 < items.size(); k += 2)
            SPNAS_RETURN_IF_ERROR(SetItem(Top(), items[k], items[k + 1]));
          break;
        }
        case 'a': {
          auto v = Pop();
          Top()->items.push_back(v);
          break;
        }            // APPEND
        case 'e': {  // APPENDS
          auto items = PopToMark();
          for (auto& v : items) Top()->items.push_back(v);
          break;
        }
        case 'X': {
          uint32_t n = U32();
          PushString(n);
          break;
        }  // BINUNICODE
        case 0x8c: {
          uint32_t n = Byte();
          PushString(n);
          break;
        }  // SHORT_BINUNICODE
        case 'U': {
          uint32_t n = Byte();
          PushString(n);
          break;
        }  // SHORT_BINSTRING
        case 'T': {
          uint32_t n = U32();
          PushString(n);
          break;
        }  // BINSTRING
        case 'q':
          memo_[Byte()] = Top();
          break;  // BINPUT
        case 'r':
          memo_[U32()] = Top();
          break;  // LONG_BINPUT
        case 0x94:
          memo_[memo_.size()] = Top();
          break;  // MEMOIZE
        case 'h':
          Push(memo_.at(Byte()));
          break;  // BINGET
        case 'j':
          Push(memo_.at(U32()));
          break;  // LONG_BINGET
        case 'J':
          PushInt(static_cast<int32_t>(U32()));
          break;  // BININT
        case 'K':
          PushInt(Byte());
          break;  // BININT1
        case 'M': {
          uint32_t lo = Byte();
          PushInt(lo | (Byte() << 8));
          break;
        }             // BININT2
        case 0x8a: {  // LONG1
          const uint8_t n = Byte();
          // Little-endian two's complement of n bytes; longer than 8 (torch.save's magic number
          // is 10), it is kept modulo 2^64, which no size or index of a state dict reaches.
          uint64_t bits = 0;
          for (int k = 0; k < n; ++k) {
            const uint64_t byte = Byte();
            if (k < 8) bits |= byte << (8 * k);
          }
          if (n > 0 && n < 8 && (bits >> (8 * n - 1)) & 1) bits |= ~uint64_t{0} << (8 * n);  // sign
          const int64_t v = static_cast<int64_t>(bits);
          PushInt(v);
          break;
        }
        case 'G': {  // BINFLOAT (big endian)
          uint64_t bits = 0;
          for (int k = 0; k < 8; ++k) bits = (bits << 8) | Byte();
          auto v = Make(Value::kFloat);
          std::memcpy(&v->f, &bits, 8);
          Push(v);
          break;
        }
        case 0x88:
        case 0x89: {  // NEWTRUE / NEWFALSE
          auto v = Make(Value::kBool);
          v->i = op == 0x88;
          Push(v);
          break;
        }
        case 'N':
          Push(Make(Value::kNone));
          break;     // NONE
        case 'c': {  // GLOBAL "module\nname\n"
          std::string module = Line(), name = Line();
          SPNAS_RETURN_IF_ERROR(PushGlobal(module + "." + name));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          auto name = Pop(), module = Pop();
          SPNAS_RETURN_IF_ERROR(PushGlobal(module->s + "." + name->s));
          break;
        }
        case 'Q': {  // BINPERSID
          SPNAS_ASSIGN_OR_RETURN(ValuePtr storage, PersistentLoad(Pop()));
          Push(storage);
          break;
        }
        case 'R': {  // REDUCE
          auto args = Pop(), callable = Pop();
          SPNAS_ASSIGN_OR_RETURN(ValuePtr result, Reduce(callable, args));
          Push(result);
          break;
        }
        case 'b':
          Pop();
          break;  // BUILD: state of an OrderedDict (its _metadata); not needed
        default: {
          char hex[8];
          std::snprintf(hex, sizeof(hex), "0x%02x", op);
          return InvalidArgumentError("unsupported pickle opcode ", hex, " at byte ", pos_ - 1,
                                      " (only what state dicts use is read)");
        }
      }
    }
    return InvalidArgumentError("the pickle ends without STOP");
  }

  size_t position() const { return pos_; }
  std::map<std::string, ValuePtr>& storages() { return storages_; }

 private:
  uint8_t Byte() {
    if (pos_ >= data_.size()) throw std::out_of_range("truncated pickle");
    return static_cast<uint8_t>(data_[pos_++]);
  }
  uint32_t U32() {
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) v |= static_cast<uint32_t>(Byte()) << (8 * k);
    return v;
  }
  std::string Line() {
    const size_t end = data_.find('\n', pos_);
    std::string s = data_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }
  ValuePtr Make(Value::Kind kind) {
    auto v = std::make_shared<Value>();
    v->kind = kind;
    made_.push_back(v);
    return v;
  }
  void Push(ValuePtr v) { stack_.push_back(std::move(v)); }
  ValuePtr Pop() {
    if (stack_.empty()) throw std::out_of_range("pickle stack underflow");
    ValuePtr v = stack_.back();
    stack_.pop_back();
    return v;
  }
  ValuePtr Top() {
    if (stack_.empty()) throw std::out_of_range("pickle stack underflow");
    return stack_.back();
  }
  std::vector<ValuePtr> PopToMark() {
    std::vector<ValuePtr> items;
    while (!stack_.empty() && stack_.back()->kind != Value::kMark) items.insert(items.begin(), Pop());
    Pop();  // the mark
    return items;
  }
  void PushString(uint32_t n) {
    auto v = Make(Value::kString);
    v->s = data_.substr(pos_, n);
    pos_ += n;
    Push(v);
  }
  void PushInt(int64_t i) {
    auto v = Make(Value::kInt);
    v->i = i;
    Push(v);
  }
  Status SetItem(const ValuePtr& dict, const ValuePtr& key, const ValuePtr& value) {
    if (dict->kind != Value::kDict) return InvalidArgumentError("SETITEM on a value that is not a dict");
    dict->dict.emplace_back(key, value);
    return Status::Ok();
  }
  Status PushGlobal(const std::string& name) {
    static const char* const kAllowed[] = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                                           "torch._utils._rebuild_parameter", "torch._utils._rebuild_tensor",
                                           "torch.jit._pickle.restore_type_tag"};
    bool ok = StorageType(name) != at::ScalarType::Undefined;
    for (const char* a : kAllowed) ok |= name == a;
    if (!ok) {
      return InvalidArgumentError("unsupported pickle global '", name,
                                  "': only state dicts of tensors are read, and no code is run");
    }
    auto v = Make(Value::kGlobal);
    v->s = name;
    Push(v);
    return Status::Ok();
  }
  // ('storage', <storage type global>, key, location, numel)
  StatusOr<ValuePtr> PersistentLoad(const ValuePtr& pid) {
    if (pid->kind != Value::kTuple || pid->items.size() < 5 || pid->items[0]->s != "storage") {
      return InvalidArgumentError("unsupported persistent id in the pickle");
    }
    const at::ScalarType type = StorageType(pid->items[1]->s);
    if (pid->items[1]->kind != Value::kGlobal || type == at::ScalarType::Undefined) {
      return InvalidArgumentError("unsupported storage type '", pid->items[1]->s, "' in the pickle");
    }
    const std::string key = pid->items[2]->s;
    auto cached = storages_.find(key);
    if (cached != storages_.end()) return cached->second;
    SPNAS_ASSIGN_OR_RETURN(at::Tensor data, storage_(key, type, pid->items[4]->i));
    auto v = Make(Value::kStorage);
    v->tensor = data;
    storages_[key] = v;
    return v;
  }
  StatusOr<ValuePtr> Reduce(const ValuePtr& callable, const ValuePtr& args) {
    const std::string& f = callable->s;
    if (f == "collections.OrderedDict") return Make(Value::kDict);
    if (f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor") {
      // (storage, storage_offset, size, stride, ...)
      const auto& a = args->items;
      if (a.size() < 4 || a[0]->kind != Value::kStorage) return InvalidArgumentError("malformed tensor in the pickle");
      auto v = Make(Value::kTensor);
      v->storage = a[0];
      v->offset = a[1]->i;
      for (auto& s : a[2]->items) v->size.push_back(s->i);
      for (auto& s : a[3]->items) v->stride.push_back(s->i);
      return v;
    }
    // LibTorch's pickler (torch::pickle_save) tags a dict with its type: the dict itself.
    if (f == "torch._utils._rebuild_parameter" || f == "torch.jit._pickle.restore_type_tag") {
      if (args->items.empty()) return InvalidArgumentError("'", f, "' without arguments in the pickle");
      return args->items[0];
    }
    return InvalidArgumentError("unsupported pickle call '", f, "'");
  }

  const std::string& data_;
  std::function<StatusOr<at::Tensor>(const std::string&, at::ScalarType, int64_t)> storage_;
  size_t pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<ValuePtr> made_;
  std::map<uint32_t, ValuePtr> memo_;
  std::map<std::string, ValuePtr> storages_;
};

// A dict of tensors (plain or nested under "state_dict"/"model") -> StateDict.
StatusOr<StateDict> ToStateDict(const ValuePtr& root, const std::string& path) {
  if (root->kind != Value::kDict) return InvalidArgumentError("'", path, "' does not hold a dict");
  for (const char* nested : {"state_dict", "model"}) {
    for (const auto& [k, v] : root->dict) {
      if (k->kind == Value::kString && k->s == nested && v->kind == Value::kDict) return ToStateDict(v, path);
    }
  }
  StateDict state;
  for (const auto& [k, v] : root->dict) {
    if (k->kind != Value::kString || v->kind != Value::kTensor) {
      return InvalidArgumentError("'", path, "' holds a dict that is not name -> tensor (key '", k->s, "')");
    }
    state[k->s] = v->storage->tensor.as_strided(v->size, v->stride, v->offset).clone();
  }
  return state;
}

// What a reader does with the unpickled object, while its storages are alive.
using UseRoot = std::function<Status(const ValuePtr& root)>;

Status ReadZip(const std::string& path, const UseRoot& use) {
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    const uint64_t file_size = std::filesystem::file_size(path);
    // torch.save stores records uncompressed: a record claiming more bytes than the file has
    // is corrupt, and must not be allocated.
    auto checked_record = [&](const std::string& record) -> Status {
      if (!reader.hasRecord(record)) return InvalidArgumentError("'", path, "' has no record '", record, "'");
      if (reader.getRecordSize(record) > file_size) {
        return InvalidArgumentError("'", path, "': record '", record, "' claims ", reader.getRecordSize(record),
                                    " bytes, more than the file's ", file_size);
      }
      return Status::Ok();
    };
    SPNAS_RETURN_IF_ERROR(checked_record("data.pkl"));
    auto [pickle_ptr, pickle_size] = reader.getRecord("data.pkl");
    const std::string pickle(static_cast<const char*>(pickle_ptr.get()), pickle_size);
    Unpickler unpickler(pickle, [&](const std::string& key, at::ScalarType type, int64_t) -> StatusOr<at::Tensor> {
      const std::string record = "data/" + key;
      SPNAS_RETURN_IF_ERROR(checked_record(record));
      auto [ptr, size] = reader.getRecord(record);
      at::Tensor bytes = at::empty({static_cast<int64_t>(size)}, at::kByte);
      if (size > 0) std::memcpy(bytes.data_ptr(), ptr.get(), size);  // empty: no data pointer
      return bytes.view(type);
    });
    SPNAS_ASSIGN_OR_RETURN(ValuePtr root, unpickler.Load());
    return use(root);
  } catch (const std::exception& e) {
    return InvalidArgumentError("'", path, "' is not a readable torch.save zip file: ", ExceptionMessage(e));
  }
}

// Legacy format: magic pickle, protocol, sys_info, the object, the storage keys, then per storage
// an int64 element count and the raw bytes.
Status ReadLegacy(const std::string& path, const std::string& bytes, const UseRoot& use) {
  try {
    size_t offset = 0;
    std::string rest = bytes;
    for (int k = 0; k < 3; ++k) {  // magic number, protocol version, sys_info
      Unpickler header(rest, nullptr);
      SPNAS_RETURN_IF_ERROR(header.Load().status());
      offset += header.position();
      rest = bytes.substr(offset);
    }
    // Storages come after the object: placeholders now, their data below.
    Unpickler main(rest, [&](const std::string&, at::ScalarType type, int64_t) -> StatusOr<at::Tensor> {
      return at::empty({0}, type);
    });
    SPNAS_ASSIGN_OR_RETURN(ValuePtr root, main.Load());
    offset += main.position();
    rest = bytes.substr(offset);
    Unpickler keys_pickle(rest, nullptr);
    SPNAS_ASSIGN_OR_RETURN(ValuePtr keys, keys_pickle.Load());
    offset += keys_pickle.position();
    for (const ValuePtr& key : keys->items) {
      if (bytes.size() - offset < 8) return InvalidArgumentError("'", path, "' is truncated");
      int64_t numel;
      std::memcpy(&numel, bytes.data() + offset, 8);
      offset += 8;
      auto it = main.storages().find(key->s);
      if (it == main.storages().end()) return InvalidArgumentError("'", path, "': storage '", key->s, "' is not used");
      at::Tensor& storage = it->second->tensor;
      // The count is checked against the bytes left before anything is allocated for it.
      const uint64_t element = c10::elementSize(storage.scalar_type());
      if (numel < 0 || static_cast<uint64_t>(numel) > (bytes.size() - offset) / element) {
        return InvalidArgumentError("'", path, "': storage '", key->s, "' claims ", numel, " elements, more than the ",
                                    bytes.size() - offset, " bytes left in the file");
      }
      const int64_t nbytes = numel * static_cast<int64_t>(element);
      at::Tensor data = at::empty({numel}, storage.options());
      if (nbytes > 0) std::memcpy(data.data_ptr(), bytes.data() + offset, nbytes);  // empty: no data pointer
      offset += nbytes;
      storage = data;
    }
    return use(root);
  } catch (const std::exception& e) {
    return InvalidArgumentError("'", path, "' is not a readable legacy torch.save file: ", ExceptionMessage(e));
  }
}

Status ReadPickled(const std::string& path, const UseRoot& use) {
  SPNAS_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  if (bytes.size() >= 4 && bytes.compare(0, 4, "PK\x03\x04") == 0) return ReadZip(path, use);
  if (!bytes.empty() && static_cast<uint8_t>(bytes[0]) == 0x80) return ReadLegacy(path, bytes, use);
  return InvalidArgumentError("'", path, "' is neither a torch.save zip file nor a legacy pickle");
}

}  // namespace

StatusOr<StateDict> ReadTorchCheckpoint(const std::string& path) {
  StateDict state;
  SPNAS_RETURN_IF_ERROR(ReadPickled(path, [&](const ValuePtr& root) -> Status {
    SPNAS_ASSIGN_OR_RETURN(state, ToStateDict(root, path));
    return Status::Ok();
  }));
  return state;
}

StatusOr<std::map<std::string, StateDict>> ReadTorchCheckpointSections(const std::string& path) {
  std::map<std::string, StateDict> sections;
  SPNAS_RETURN_IF_ERROR(ReadPickled(path, [&](const ValuePtr& root) -> Status {
    if (root->kind != Value::kDict) return InvalidArgumentError("'", path, "' does not hold a dict");
    for (const auto& [k, v] : root->dict) {
      if (k->kind != Value::kString || v->kind != Value::kDict) {
        return InvalidArgumentError("'", path, "' holds a dict that is not name -> dict of tensors (key '", k->s, "')");
      }
      SPNAS_ASSIGN_OR_RETURN(sections[k->s], ToStateDict(v, path + " [" + k->s + "]"));
    }
    return Status::Ok();
  }));
  return sections;
}

}  // namespace spnas
