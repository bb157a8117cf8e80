#include "pickle.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "little_endian.h"

namespace torchts {
namespace {

// The Python values a state_dict pickle is made of.
struct PyObject;
using PyRef = std::shared_ptr<PyObject>;
struct PyObject {
  enum Kind { None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Storage, Tensor } kind;
  int64_t i = 0;
  double f = 0;
  std::string s;             // Str; Global: "module.name"
  std::vector<PyRef> items;  // Tuple, List; Dict: key, value, key, value ...
  torch::Tensor tensor;      // Storage (1-D, all elements), Tensor

  explicit PyObject(Kind k) : kind(k) {}
  ~PyObject();
};

// Freeing a deeply nested value by recursion would overflow the stack (a 150 KB pickle nests
// 150,000 lists). The outermost destructor frees the children in a loop instead: each child's
// own destructor hands its children to that loop rather than freeing them itself.
PyObject::~PyObject() {
  thread_local std::vector<PyRef>* draining = nullptr;
  if (items.empty()) return;
  if (draining) {
    for (auto& child : items) draining->push_back(std::move(child));
    return;
  }
  std::vector<PyRef> work(std::make_move_iterator(items.begin()), std::make_move_iterator(items.end()));
  items.clear();
  draining = &work;
  while (!work.empty()) {
    PyRef last = std::move(work.back());
    work.pop_back();
    last.reset();  // may append its children to `work`
  }
  draining = nullptr;
}

const char* kindName(PyObject::Kind k) {
  static const char* names[] = {"None", "bool", "int", "float", "str", "tuple",
                                "list", "dict", "global", "storage", "tensor"};
  return names[k];
}

// Every value one file's unpicklers made. A hostile pickle can put a list inside itself (memo
// get + append), a cycle reference counts never free; when the file is done, the arena empties
// every value still alive, which breaks each cycle.
class Arena {
 public:
  Arena() = default;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  ~Arena() {
    for (auto& weak : made_) {
      if (PyRef alive = weak.lock()) {
        std::vector<PyRef> children;
        children.swap(alive->items);
      }
    }
  }
  PyRef make(PyObject::Kind k) {
    auto v = std::make_shared<PyObject>(k);
    made_.push_back(v);
    return v;
  }

 private:
  std::vector<std::weak_ptr<PyObject>> made_;
};

// torch's legacy storage class names -> dtypes.
bool storageDtype(const std::string& global, torch::Dtype& dtype) {
  static const std::map<std::string, torch::Dtype> types = {
      {"torch.FloatStorage", torch::kFloat32},   {"torch.DoubleStorage", torch::kFloat64},
      {"torch.HalfStorage", torch::kFloat16},    {"torch.BFloat16Storage", torch::kBFloat16},
      {"torch.LongStorage", torch::kInt64},      {"torch.IntStorage", torch::kInt32},
      {"torch.ShortStorage", torch::kInt16},     {"torch.CharStorage", torch::kInt8},
      {"torch.ByteStorage", torch::kUInt8},      {"torch.BoolStorage", torch::kBool},
      {"torch.UntypedStorage", torch::kUInt8},
  };
  auto it = types.find(global);
  if (it == types.end()) return false;
  dtype = it->second;
  return true;
}

class Unpickler {
 public:
  // Reads one pickle from data starting at *pos, and leaves *pos after its STOP.
  Unpickler(const std::string& data, size_t* pos, const StorageLoader& loader, const std::string& path, Arena& arena)
      : data_(data), pos_(*pos), loader_(loader), path_(path), end_(pos), arena_(arena) {}
  ~Unpickler() { *end_ = pos_; }

  PyRef run() {
    for (;;) {
      const uint8_t op = u8();
      if (op == '.') break;  // STOP
      step(op);
    }
    if (stack_.size() != 1) fail("malformed pickle (stack holds " + std::to_string(stack_.size()) + " values at STOP)");
    return stack_.back();
  }

 private:
  [[noreturn]] void fail(const std::string& why) const { throw std::runtime_error(path_ + ": " + why); }
  PyRef make(PyObject::Kind k) { return arena_.make(k); }

  void need(size_t n) const {
    if (n > data_.size() - pos_) fail("truncated pickle");
  }
  uint8_t u8() {
    need(1);
    return static_cast<uint8_t>(data_[pos_++]);
  }
  uint64_t uLe(int width) {
    need(width);
    pos_ += width;
    return readLittleEndian(data_.data() + pos_ - width, width);
  }
  std::string bytes(size_t n) {
    need(n);
    std::string s = data_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::string line() {
    const size_t end = data_.find('\n', pos_);
    if (end == std::string::npos) fail("truncated pickle");
    std::string s = data_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }

  PyRef pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail("malformed pickle (stack underflow)");
    PyRef v = stack_.back();
    stack_.pop_back();
    return v;
  }
  PyRef& top() {
    if (stack_.empty()) fail("malformed pickle (stack underflow)");
    return stack_.back();
  }
  // Values pushed since the last MARK, removing them and the mark.
  std::vector<PyRef> popToMark() {
    if (marks_.empty()) fail("malformed pickle (no MARK)");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<PyRef> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  PyRef str(std::string s) {
    auto v = make(PyObject::Str);
    v->s = std::move(s);
    return v;
  }
  PyRef integer(int64_t i) {
    auto v = make(PyObject::Int);
    v->i = i;
    return v;
  }
  PyRef tuple(std::vector<PyRef> items) {
    auto v = make(PyObject::Tuple);
    v->items = std::move(items);
    return v;
  }
  void memoize(uint64_t key) { memo_[key] = top(); }
  PyRef memoGet(uint64_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) fail("malformed pickle (memo key " + std::to_string(key) + " unset)");
    return it->second;
  }
  void setItems(const PyRef& dict, const std::vector<PyRef>& kv) {
    if (dict->kind != PyObject::Dict) fail(std::string("malformed pickle (SETITEMS on a ") + kindName(dict->kind) + ")");
    if (kv.size() % 2) fail("malformed pickle (odd SETITEMS)");
    dict->items.insert(dict->items.end(), kv.begin(), kv.end());
  }
  void global(const std::string& module, const std::string& name) {
    auto v = make(PyObject::Global);
    v->s = module + "." + name;
    stack_.push_back(v);
  }

  void step(uint8_t op) {
    switch (op) {
      case 0x80: u8(); break;                   // PROTO
      case 0x95: uLe(8); break;                 // FRAME: a length hint only
      case '(': marks_.push_back(stack_.size()); break;  // MARK
      case '}': stack_.push_back(make(PyObject::Dict)); break;   // EMPTY_DICT
      case ']': stack_.push_back(make(PyObject::List)); break;   // EMPTY_LIST
      case ')': stack_.push_back(tuple({})); break;              // EMPTY_TUPLE
      case 'N': stack_.push_back(make(PyObject::None)); break;   // NONE
      case 0x88: case 0x89: {                                    // NEWTRUE / NEWFALSE
        auto v = make(PyObject::Bool);
        v->i = op == 0x88;
        stack_.push_back(v);
        break;
      }
      case 'J': stack_.push_back(integer(static_cast<int32_t>(uLe(4)))); break;  // BININT
      case 'K': stack_.push_back(integer(uLe(1))); break;                        // BININT1
      case 'M': stack_.push_back(integer(uLe(2))); break;                        // BININT2
      case 0x8a: {                                                               // LONG1
        const size_t n = u8();
        if (n > 8) fail("integer too large in pickle");
        uint64_t v = n ? uLe(static_cast<int>(n)) : 0;
        if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t(0) << (8 * n);  // sign-extend
        stack_.push_back(integer(static_cast<int64_t>(v)));
        break;
      }
      case 'G': {  // BINFLOAT: big-endian double
        need(8);
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | static_cast<uint8_t>(data_[pos_ + i]);
        pos_ += 8;
        auto v = make(PyObject::Float);
        std::memcpy(&v->f, &bits, 8);
        stack_.push_back(v);
        break;
      }
      case 'X': stack_.push_back(str(bytes(uLe(4)))); break;     // BINUNICODE
      case 0x8c: stack_.push_back(str(bytes(u8()))); break;      // SHORT_BINUNICODE
      case 0x8d: stack_.push_back(str(bytes(uLe(8)))); break;    // BINUNICODE8
      case 'T': stack_.push_back(str(bytes(uLe(4)))); break;     // BINSTRING
      case 'U': stack_.push_back(str(bytes(u8()))); break;       // SHORT_BINSTRING
      case 'q': memoize(u8()); break;                            // BINPUT
      case 'r': memoize(uLe(4)); break;                          // LONG_BINPUT
      case 0x94: memoize(memo_.size()); break;                   // MEMOIZE
      case 'h': stack_.push_back(memoGet(u8())); break;          // BINGET
      case 'j': stack_.push_back(memoGet(uLe(4))); break;        // LONG_BINGET
      case 't': stack_.push_back(tuple(popToMark())); break;     // TUPLE
      case 0x85: { auto a = pop(); stack_.push_back(tuple({a})); break; }  // TUPLE1
      case 0x86: { auto b = pop(), a = pop(); stack_.push_back(tuple({a, b})); break; }  // TUPLE2
      case 0x87: { auto c = pop(), b = pop(), a = pop(); stack_.push_back(tuple({a, b, c})); break; }  // TUPLE3
      case 'c': { auto module = line(); auto name = line(); global(module, name); break; }  // GLOBAL
      case 0x93: {  // STACK_GLOBAL
        auto name = pop(), module = pop();
        if (name->kind != PyObject::Str || module->kind != PyObject::Str) fail("malformed pickle (STACK_GLOBAL)");
        global(module->s, name->s);
        break;
      }
      case 'Q': stack_.push_back(persistentLoad(pop())); break;  // BINPERSID
      case 'R': { auto args = pop(), fn = pop(); stack_.push_back(reduce(fn, args)); break; }  // REDUCE
      case 's': { auto v = pop(), k = pop(); setItems(top(), {k, v}); break; }  // SETITEM
      case 'u': { auto kv = popToMark(); setItems(top(), kv); break; }         // SETITEMS
      case 'a': {  // APPEND
        auto v = pop();
        if (top()->kind != PyObject::List) fail("malformed pickle (APPEND to a non-list)");
        top()->items.push_back(v);
        break;
      }
      case 'e': {  // APPENDS
        auto items = popToMark();
        if (top()->kind != PyObject::List) fail("malformed pickle (APPENDS to a non-list)");
        top()->items.insert(top()->items.end(), items.begin(), items.end());
        break;
      }
      case 'b': pop(); break;  // BUILD: OrderedDict state (_metadata) and tensor hooks; not needed
      default: {
        std::ostringstream msg;
        msg << "unsupported pickle opcode 0x" << std::hex << int(op) << " at byte " << std::dec << (pos_ - 1)
            << " (only state_dicts of tensors are supported)";
        fail(msg.str());
      }
    }
  }

  // ('storage', <storage class>, key, location, numel[, view]) -> the storage's elements.
  PyRef persistentLoad(const PyRef& pid) {
    const auto& f = pid->items;
    if (pid->kind != PyObject::Tuple || f.size() < 5 || f[0]->kind != PyObject::Str || f[0]->s != "storage" ||
        f[1]->kind != PyObject::Global || f[2]->kind != PyObject::Str || f[4]->kind != PyObject::Int) {
      fail("unsupported persistent id in the pickle (expected a torch storage)");
    }
    if (f.size() > 5 && f[5]->kind != PyObject::None) fail("storage views (old PyTorch) are not supported");
    auto cached = storages_.find(f[2]->s);
    if (cached != storages_.end()) return cached->second;
    torch::Dtype dtype;
    if (!storageDtype(f[1]->s, dtype)) fail("unsupported storage type " + f[1]->s);
    if (f[4]->i < 0) fail("negative storage size in the pickle");
    auto v = make(PyObject::Storage);
    v->tensor = loader_(f[2]->s, dtype, f[4]->i);
    storages_[f[2]->s] = v;
    return v;
  }

  std::vector<int64_t> intTuple(const PyRef& t, const char* what) {
    if (t->kind != PyObject::Tuple) fail(std::string("malformed tensor ") + what + "");
    std::vector<int64_t> out;
    for (const auto& v : t->items) {
      if (v->kind != PyObject::Int) fail(std::string("malformed tensor ") + what + "");
      out.push_back(v->i);
    }
    return out;
  }

  // _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]).
  PyRef rebuildTensor(const std::vector<PyRef>& args) {
    if (args.size() < 4 || args[0]->kind != PyObject::Storage || args[1]->kind != PyObject::Int) {
      fail("malformed _rebuild_tensor arguments");
    }
    const torch::Tensor& storage = args[0]->tensor;
    const int64_t offset = args[1]->i;
    const auto size = intTuple(args[2], "size");
    const auto stride = intTuple(args[3], "stride");
    if (size.size() != stride.size()) fail("malformed tensor: size and stride differ in length");
    if (offset < 0) fail("malformed tensor: negative storage offset");
    int64_t last = offset;
    bool empty = false;
    for (size_t d = 0; d < size.size(); ++d) {
      if (size[d] < 0 || stride[d] < 0) fail("malformed tensor: negative size or stride");
      if (size[d] == 0) empty = true;
      if (size[d] > 0 && stride[d] > 0) {
        if (size[d] - 1 > (std::numeric_limits<int64_t>::max() - last) / stride[d]) {
          fail("malformed tensor: size and stride overflow");
        }
        last += (size[d] - 1) * stride[d];
      }
    }
    if (!empty && last >= storage.numel()) fail("tensor lies outside its storage");
    auto v = make(PyObject::Tensor);
    v->tensor = empty ? torch::empty(size, storage.options()) : storage.as_strided(size, stride, offset);
    return v;
  }

  PyRef reduce(const PyRef& fn, const PyRef& args) {
    if (fn->kind != PyObject::Global) fail(std::string("malformed pickle (REDUCE on a ") + kindName(fn->kind) + ")");
    if (args->kind != PyObject::Tuple) fail("malformed pickle (REDUCE arguments are not a tuple)");
    const std::string& name = fn->s;
    if (name == "collections.OrderedDict" && args->items.empty()) return make(PyObject::Dict);
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      return rebuildTensor(args->items);
    }
    if (name == "torch._utils._rebuild_parameter" && !args->items.empty() &&
        args->items[0]->kind == PyObject::Tensor) {
      return args->items[0];
    }
    fail("unsupported object " + name + " (only state_dicts of tensors are supported)");
  }

  const std::string& data_;
  size_t pos_;
  const StorageLoader& loader_;
  const std::string& path_;
  size_t* end_;
  Arena& arena_;
  std::vector<PyRef> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, PyRef> memo_;
  std::map<std::string, PyRef> storages_;
};

NamedTensors stateDictFrom(const PyRef& root, const std::string& path) {
  if (root->kind != PyObject::Dict) {
    throw std::runtime_error(path + ": expected a state_dict (a dict of tensors) but the file holds a " +
                             kindName(root->kind));
  }
  NamedTensors out;
  for (size_t k = 0; k + 1 < root->items.size(); k += 2) {
    const PyRef& key = root->items[k];
    const PyRef& value = root->items[k + 1];
    if (key->kind != PyObject::Str) throw std::runtime_error(path + ": a state_dict key is not a string");
    if (value->kind != PyObject::Tensor) {
      throw std::runtime_error(path + ": entry '" + key->s + "' is a " + kindName(value->kind) +
                               ", not a tensor; save model.state_dict() itself");
    }
    out.emplace_back(key->s, value->tensor);
  }
  return out;
}

}  // namespace

void checkPickleShape(const std::string& pickle, size_t maxDepth, const std::string& what) {
  auto fail = [&](const std::string& why) { throw std::runtime_error(what + ": " + why); };
  size_t pos = 0;
  auto need = [&](uint64_t n) {
    if (n > pickle.size() - pos) fail("truncated pickle");
  };
  auto skip = [&](uint64_t n) {
    need(n);
    pos += n;
  };
  auto uLe = [&](int width) {
    need(width);
    pos += width;
    return readLittleEndian(pickle.data() + pos - width, width);
  };
  // Every value gets an id; a container lists the ids it holds.
  std::vector<std::vector<uint32_t>> children;
  std::vector<uint32_t> stack;
  std::vector<size_t> marks;
  std::map<uint64_t, uint32_t> memo;
  auto fresh = [&](std::vector<uint32_t> items = {}) {
    children.push_back(std::move(items));
    return static_cast<uint32_t>(children.size() - 1);
  };
  auto pop = [&] {
    if (stack.empty() || (!marks.empty() && stack.size() <= marks.back())) fail("malformed pickle (stack underflow)");
    const uint32_t v = stack.back();
    stack.pop_back();
    return v;
  };
  auto popToMark = [&] {
    if (marks.empty()) fail("malformed pickle (no MARK)");
    std::vector<uint32_t> items(stack.begin() + static_cast<std::ptrdiff_t>(marks.back()), stack.end());
    stack.resize(marks.back());
    marks.pop_back();
    return items;
  };
  auto top = [&]() -> uint32_t {
    if (stack.empty()) fail("malformed pickle (stack underflow)");
    return stack.back();
  };
  auto addTo = [&](uint32_t container, const std::vector<uint32_t>& items) {
    children[container].insert(children[container].end(), items.begin(), items.end());
  };
  for (bool stop = false; !stop;) {
    need(1);
    const uint8_t op = static_cast<uint8_t>(pickle[pos++]);
    switch (op) {
      case '.': stop = true; break;                                   // STOP
      case 0x80: skip(1); break;                                      // PROTO
      case 0x95: skip(8); break;                                      // FRAME
      case '(': marks.push_back(stack.size()); break;                 // MARK
      case '}': case ']': case ')': case 'N': case 0x88: case 0x89:   // empty containers, None, bools
        stack.push_back(fresh());
        break;
      case 'J': skip(4); stack.push_back(fresh()); break;             // BININT
      case 'K': skip(1); stack.push_back(fresh()); break;             // BININT1
      case 'M': skip(2); stack.push_back(fresh()); break;             // BININT2
      case 'G': skip(8); stack.push_back(fresh()); break;             // BINFLOAT
      case 0x8a: skip(uLe(1)); stack.push_back(fresh()); break;       // LONG1
      case 0x8b: skip(uLe(4)); stack.push_back(fresh()); break;       // LONG4
      case 'X': case 'T': case 'B': skip(uLe(4)); stack.push_back(fresh()); break;  // (BIN)UNICODE/STRING/BYTES
      case 0x8c: case 'U': case 'C': skip(uLe(1)); stack.push_back(fresh()); break; // their short forms
      case 0x8d: case 0x8e: skip(uLe(8)); stack.push_back(fresh()); break;          // BINUNICODE8, BINBYTES8
      case 'c': {                                                     // GLOBAL: module\n name\n
        for (int line = 0; line < 2; ++line) {
          const size_t end = pickle.find('\n', pos);
          if (end == std::string::npos) fail("truncated pickle");
          pos = end + 1;
        }
        stack.push_back(fresh());
        break;
      }
      case 0x93: { pop(); pop(); stack.push_back(fresh()); break; }   // STACK_GLOBAL
      case 'q': memo[uLe(1)] = top(); break;                          // BINPUT
      case 'r': memo[uLe(4)] = top(); break;                          // LONG_BINPUT
      case 0x94: memo[memo.size()] = top(); break;                    // MEMOIZE
      case 'h': case 'j': {                                           // BINGET, LONG_BINGET
        auto found = memo.find(uLe(op == 'h' ? 1 : 4));
        if (found == memo.end()) fail("malformed pickle (memo key unset)");
        stack.push_back(found->second);
        break;
      }
      case 't': case 'l': case 'd': stack.push_back(fresh(popToMark())); break;  // TUPLE, LIST, DICT
      case 0x85: { auto a = pop(); stack.push_back(fresh({a})); break; }          // TUPLE1
      case 0x86: { auto b = pop(), a = pop(); stack.push_back(fresh({a, b})); break; }
      case 0x87: { auto c = pop(), b = pop(), a = pop(); stack.push_back(fresh({a, b, c})); break; }
      case 'a': { auto v = pop(); addTo(top(), {v}); break; }         // APPEND
      case 'e': case 'u': { auto items = popToMark(); addTo(top(), items); break; }  // APPENDS, SETITEMS
      case 's': { auto v = pop(), k = pop(); addTo(top(), {k, v}); break; }          // SETITEM
      case 'b': { auto state = pop(); addTo(top(), {state}); break; } // BUILD
      case 'Q': { auto id = pop(); stack.push_back(fresh({id})); break; }            // BINPERSID
      case 'R': case 0x81: { auto args = pop(), fn = pop(); stack.push_back(fresh({fn, args})); break; }  // REDUCE, NEWOBJ
      case '0': pop(); break;                                         // POP
      case '1': popToMark(); break;                                   // POP_MARK
      case '2': stack.push_back(top()); break;                        // DUP
      default: {
        char hex[8];
        std::snprintf(hex, sizeof(hex), "0x%02x", op);
        fail(std::string("unexpected pickle opcode ") + hex);
      }
    }
  }
  if (stack.size() != 1) fail("malformed pickle (" + std::to_string(stack.size()) + " values at STOP)");
  // Longest path from the root, without recursion; a value met again on its own path is a cycle.
  std::vector<uint8_t> state(children.size(), 0);  // 0 new, 1 on the path, 2 done
  std::vector<size_t> depth(children.size(), 0);
  std::vector<std::pair<uint32_t, size_t>> path{{stack[0], 0}};
  state[stack[0]] = 1;
  while (!path.empty()) {
    auto& [node, next] = path.back();
    if (next < children[node].size()) {
      const uint32_t child = children[node][next++];
      if (state[child] == 1) fail("a value that contains itself");
      if (state[child] == 0) {
        state[child] = 1;
        path.emplace_back(child, 0);
        if (path.size() > maxDepth) fail("values nested more than " + std::to_string(maxDepth) + " levels deep");
      }
      continue;
    }
    size_t d = 0;
    for (uint32_t child : children[node]) d = std::max(d, depth[child] + 1);
    depth[node] = d;
    if (d > maxDepth) fail("values nested more than " + std::to_string(maxDepth) + " levels deep");
    state[node] = 2;
    path.pop_back();
  }
}

NamedTensors unpickleStateDict(const std::string& pickle, const StorageLoader& loader, const std::string& path) {
  size_t pos = 0;
  Arena arena;  // outlives the values, which stateDictFrom reads
  return stateDictFrom(Unpickler(pickle, &pos, loader, path, arena).run(), path);
}

NamedTensors unpickleLegacyStateDict(const std::string& file, const std::string& path) {
  // Layout: magic number, format version, system info, the object, its sorted storage
  // keys: five pickles, then each storage as an int64 element count and its raw bytes.
  static const char kMagic[] = "\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19\x2e";
  const size_t magicLen = sizeof(kMagic) - 1;
  if (file.size() < 2 + magicLen || file.compare(2, magicLen, kMagic, magicLen) != 0) {
    throw std::runtime_error(path + ": not a torch.save file (neither the zip nor the legacy format)");
  }
  size_t pos = 2 + magicLen;
  std::vector<std::pair<std::string, torch::Tensor>> pending;  // storages in the order they are read
  StorageLoader none = [&](const std::string&, torch::Dtype, int64_t) -> torch::Tensor {
    throw std::runtime_error(path + ": unexpected storage in the file header");
  };
  StorageLoader later = [&](const std::string& key, torch::Dtype dtype, int64_t numel) {
    // Bound the allocation by what the file can hold before trusting the pickled size.
    if (static_cast<uint64_t>(numel) > file.size() / c10::elementSize(dtype)) {
      throw std::runtime_error(path + ": storage '" + key + "' is larger than the file (truncated or corrupt)");
    }
    auto storage = torch::empty({numel}, torch::dtype(dtype));
    pending.emplace_back(key, storage);
    return storage;
  };
  Arena arena;
  PyRef version = Unpickler(file, &pos, none, path, arena).run();
  if (version->kind != PyObject::Int || version->i != 1001) {
    throw std::runtime_error(path + ": unsupported legacy torch.save version");
  }
  PyRef info = Unpickler(file, &pos, none, path, arena).run();
  for (size_t k = 0; info->kind == PyObject::Dict && k + 1 < info->items.size(); k += 2) {
    if (info->items[k]->s == "little_endian" && !info->items[k + 1]->i) {
      throw std::runtime_error(path + ": big-endian files are not supported");
    }
  }
  PyRef root = Unpickler(file, &pos, later, path, arena).run();
  PyRef keys = Unpickler(file, &pos, none, path, arena).run();
  if (keys->kind != PyObject::List) throw std::runtime_error(path + ": malformed legacy storage list");
  std::map<std::string, torch::Tensor> byKey(pending.begin(), pending.end());
  for (const PyRef& key : keys->items) {
    auto it = byKey.find(key->s);
    if (key->kind != PyObject::Str || it == byKey.end()) throw std::runtime_error(path + ": malformed legacy storage list");
    torch::Tensor& storage = it->second;
    const uint64_t bytes = static_cast<uint64_t>(storage.numel()) * storage.element_size();
    if (file.size() - pos < 8) throw std::runtime_error(path + ": truncated file (storage data missing)");
    int64_t count = 0;
    std::memcpy(&count, file.data() + pos, 8);
    pos += 8;
    if (count != storage.numel()) throw std::runtime_error(path + ": storage '" + key->s + "' has the wrong size");
    if (file.size() - pos < bytes) throw std::runtime_error(path + ": truncated file (storage data missing)");
    if (bytes > 0) std::memcpy(storage.data_ptr(), file.data() + pos, bytes);
    pos += bytes;
  }
  if (byKey.size() != keys->items.size()) throw std::runtime_error(path + ": malformed legacy storage list");
  return stateDictFrom(root, path);
}

}  // namespace torchts
