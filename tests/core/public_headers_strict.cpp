// Compiled (not run) with -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
// -Wuseless-cast -Werror: every public header must stay clean under the flags users build with,
// and step() must take libtorch's int64_t sizes without a cast.
#include <cstdint>

#include <trainmeter/distributed.hpp>
#include <trainmeter/torch.hpp>
#include <trainmeter/torch_ops.hpp>
#include <trainmeter/trainmeter.hpp>

void trainmeter_strict_headers_use(trainmeter::Session& session, std::int64_t batch, int k,
                                   std::size_t n) {
  { auto s = session.step(batch); }      // what `batch.data.size(0)` gives
  { auto s = session.step(k, "eval"); }  // int
  { auto s = session.step(n); }          // size_t
  { auto s = session.step(); }
}
