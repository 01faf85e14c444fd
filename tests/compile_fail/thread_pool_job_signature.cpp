// expect: ThreadPool::run needs f(std::size_t part)
// A job for ThreadPool::run is called with the index of its part; a callable
// that takes something else is rejected with that message.
#include <ctnn/core/thread_pool.hpp>

#include <string>

int main() {
  ctnn::ThreadPool pool(2);
  pool.run(2, [](const std::string&) {});
}
