// Reading a whole file into memory with messages that say why it failed.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "ctnn/core/errors.hpp"

namespace ctnn::detail {

inline std::vector<std::byte> read_whole_file(const std::filesystem::path& path) {
  const auto fail = [&](const std::string& what, int error_number) {
    throw LoadError("cannot read '" + path.string() + "': " + what + ": " +
                    std::generic_category().message(error_number));
  };
  // O_NONBLOCK so that opening a FIFO by mistake does not wait for a writer;
  // it has no effect on regular files.
  const int descriptor = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (descriptor < 0) fail("open failed", errno);
  struct Closer {
    int descriptor;
    ~Closer() { ::close(descriptor); }
  } closer{descriptor};

  struct stat status {};
  if (::fstat(descriptor, &status) != 0) fail("fstat failed", errno);
  if (!S_ISREG(status.st_mode)) {
    throw LoadError("cannot read '" + path.string() + "': expected a regular file, found " +
                    (S_ISDIR(status.st_mode) ? "a directory" : "a special file"));
  }
  std::vector<std::byte> bytes(static_cast<std::size_t>(status.st_size));
  std::size_t filled = 0;
  while (filled < bytes.size()) {
    const ::ssize_t got = ::read(descriptor, bytes.data() + filled, bytes.size() - filled);
    if (got < 0) {
      if (errno == EINTR) continue;
      fail("read failed", errno);
    }
    if (got == 0) {
      throw LoadError("cannot read '" + path.string() + "': the file shrank while it was read (" +
                      std::to_string(filled) + " of " + std::to_string(bytes.size()) + " bytes)");
    }
    filled += static_cast<std::size_t>(got);
  }
  return bytes;
}

}  // namespace ctnn::detail
