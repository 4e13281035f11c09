// raw.cpp: C++ raw strings and templates.
#include <string>
#include <vector>

namespace demo {

const char *kHelp = R"(usage: demo [options]
  -v    verbose, it's "loud"
  // not a comment inside a raw string
)";

template <typename T>
std::vector<T> repeat(const T &value, std::size_t n) {
    std::vector<T> out;
    out.reserve(n);  // one allocation
    for (std::size_t i = 0; i < n; ++i) out.push_back(value);
    return out;
}

}  // namespace demo
