#include "io/json.h"

#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <unordered_set>

namespace lethe::json {

const Value* Value::find(const std::string& key) const {
  for (const auto& [k, v] : object)
    if (k == key) return &v;
  return nullptr;
}

namespace {

constexpr int kMaxDepth = 64;  // fuzzed input must not exhaust the stack

class Parser {
 public:
  Parser(const char* data, size_t size) : p_(data), begin_(data), end_(data + size) {}

  Value document() {
    Value v = value(0);
    skipSpace();
    if (p_ != end_) error("trailing characters after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void error(const std::string& what) const {
    throw std::runtime_error("invalid JSON at byte " + std::to_string(p_ - begin_) + ": " + what);
  }
  void skipSpace() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  bool literal(const char* word) {
    const char* q = p_;
    for (; *word; ++word, ++q)
      if (q == end_ || *q != *word) return false;
    p_ = q;
    return true;
  }

  Value value(int depth) {
    if (depth > kMaxDepth) error("nested too deeply");
    skipSpace();
    if (p_ == end_) error("unexpected end");
    Value v;
    switch (*p_) {
      case '{': object(v, depth); break;
      case '[': array(v, depth); break;
      case '"': v.kind = Value::Kind::String; v.s = string(); break;
      case 't': if (!literal("true")) error("bad literal"); v.kind = Value::Kind::Bool; v.b = true; break;
      case 'f': if (!literal("false")) error("bad literal"); v.kind = Value::Kind::Bool; break;
      case 'n': if (!literal("null")) error("bad literal"); break;
      default: number(v);
    }
    return v;
  }

  void object(Value& v, int depth) {
    v.kind = Value::Kind::Object;
    ++p_;
    skipSpace();
    if (p_ != end_ && *p_ == '}') { ++p_; return; }
    // Small objects (a tensor's entry) are checked by scanning; large ones (the header itself,
    // 80k tensors) through a hash set, as a scan per key would make the check quadratic (it took
    // 11.5 s for a 0.87 MB header on the JS thread).
    constexpr size_t kScanLimit = 16;
    std::unordered_set<std::string> seen;
    for (;;) {
      skipSpace();
      if (p_ == end_ || *p_ != '"') error("expected a string key");
      std::string key = string();
      if (v.object.size() < kScanLimit) {
        if (v.find(key)) error("duplicate key \"" + key + "\"");
      } else {
        if (seen.empty())
          for (const auto& [k, _] : v.object) seen.insert(k);
        if (!seen.insert(key).second) error("duplicate key \"" + key + "\"");
      }
      skipSpace();
      if (p_ == end_ || *p_ != ':') error("expected ':'");
      ++p_;
      v.object.emplace_back(std::move(key), value(depth + 1));
      skipSpace();
      if (p_ == end_) error("unexpected end in object");
      if (*p_ == ',') { ++p_; continue; }
      if (*p_ == '}') { ++p_; return; }
      error("expected ',' or '}'");
    }
  }

  void array(Value& v, int depth) {
    v.kind = Value::Kind::Array;
    ++p_;
    skipSpace();
    if (p_ != end_ && *p_ == ']') { ++p_; return; }
    for (;;) {
      v.array.push_back(value(depth + 1));
      skipSpace();
      if (p_ == end_) error("unexpected end in array");
      if (*p_ == ',') { ++p_; continue; }
      if (*p_ == ']') { ++p_; return; }
      error("expected ',' or ']'");
    }
  }

  static void appendUtf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) out += static_cast<char>(cp);
    else if (cp < 0x800) { out += static_cast<char>(0xC0 | (cp >> 6)); out += static_cast<char>(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12)); out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18)); out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F)); out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  uint32_t hex4() {
    if (end_ - p_ < 4) error("short \\u escape");
    uint32_t cp = 0;
    for (int k = 0; k < 4; ++k, ++p_) {
      char c = *p_;
      cp <<= 4;
      if (c >= '0' && c <= '9') cp |= c - '0';
      else if (c >= 'a' && c <= 'f') cp |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') cp |= c - 'A' + 10;
      else error("bad hex digit in \\u escape");
    }
    return cp;
  }

  // One multi-byte UTF-8 sequence whose lead byte was just read: well-formed, shortest form, no
  // surrogates, at most U+10FFFF (safetensors' own reader takes the header as a Rust &str, so
  // invalid UTF-8 is refused there too; a name JS cannot hold exactly would not be found by it).
  void utf8Sequence(std::string& out, unsigned char lead) {
    int more;
    uint32_t cp, min;
    if (lead >= 0xC2 && lead <= 0xDF) { more = 1; cp = lead & 0x1F; min = 0x80; }
    else if (lead >= 0xE0 && lead <= 0xEF) { more = 2; cp = lead & 0x0F; min = 0x800; }
    else if (lead >= 0xF0 && lead <= 0xF4) { more = 3; cp = lead & 0x07; min = 0x10000; }
    else error("invalid UTF-8 in string");
    if (end_ - p_ < more) error("truncated UTF-8 in string");
    out += static_cast<char>(lead);
    for (int k = 0; k < more; ++k, ++p_) {
      const unsigned char b = static_cast<unsigned char>(*p_);
      if ((b & 0xC0) != 0x80) error("invalid UTF-8 in string");
      cp = (cp << 6) | (b & 0x3F);
      out += static_cast<char>(b);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) error("invalid UTF-8 in string");
  }

  std::string string() {
    ++p_;  // opening quote
    std::string out;
    for (;;) {
      if (p_ == end_) error("unterminated string");
      char c = *p_++;
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) error("control character in string");
      if (static_cast<unsigned char>(c) >= 0x80) { utf8Sequence(out, static_cast<unsigned char>(c)); continue; }
      if (c != '\\') { out += c; continue; }
      if (p_ == end_) error("unterminated escape");
      char e = *p_++;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {
            if (end_ - p_ < 6 || p_[0] != '\\' || p_[1] != 'u') error("lone high surrogate");
            p_ += 2;
            uint32_t lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) error("bad low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            error("lone low surrogate");
          }
          appendUtf8(out, cp);
          break;
        }
        default: error("bad escape");
      }
    }
  }

  void number(Value& v) {
    // JSON's grammar exactly: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? ("01", "1." and "1e"
    // are not numbers, as JSON.parse agrees).
    const char* start = p_;
    auto digit = [this] { return p_ != end_ && *p_ >= '0' && *p_ <= '9'; };
    auto digits = [&] {
      if (!digit()) error("malformed number");
      while (digit()) ++p_;
    };
    if (p_ != end_ && *p_ == '-') ++p_;
    if (!digit()) error("unexpected character");
    if (*p_ == '0') ++p_;
    else digits();
    bool integral = true;
    if (p_ != end_ && *p_ == '.') { ++p_; digits(); integral = false; }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      digits();
      integral = false;
    }
    std::string text(start, p_);
    char* endp = nullptr;
    errno = 0;
    if (integral) {
      long long n = std::strtoll(text.c_str(), &endp, 10);
      if (*endp) error("malformed integer");
      if (errno != ERANGE) {
        v.kind = Value::Kind::Int;
        v.i = n;
        return;
      }
      // Past int64: a number all the same (as JSON.parse reads it); fields that need an integer refuse it.
      errno = 0;
    }
    {
      double d = std::strtod(text.c_str(), &endp);
      if (*endp) error("malformed number");
      v.kind = Value::Kind::Double;
      v.d = d;
    }
  }

  const char* p_;
  const char* begin_;
  const char* end_;
};

}  // namespace

Value parse(const char* data, size_t size) { return Parser(data, size).document(); }

std::string quote(const std::string& s) {
  static const char* hex = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) { out += "\\u00"; out += hex[c >> 4]; out += hex[c & 15]; }
        else out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

}  // namespace lethe::json
