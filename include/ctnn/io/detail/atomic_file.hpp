// Replacing a file so that readers (and a crash) only ever see the old
// contents or the complete new contents: write a temporary file next to the
// destination, fsync it, then rename it over the destination. rename() within
// one directory (so one file system) is atomic on POSIX.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <system_error>

#include "ctnn/core/errors.hpp"

namespace ctnn::detail {

inline std::string errno_message(int error_number) {
  // std::generic_category is thread-safe where strerror() is not.
  return std::generic_category().message(error_number);
}

// Owns the temporary file until it has been renamed, so that every early
// exit (an exception included) closes and removes it.
class TemporaryFile {
 public:
  TemporaryFile(int descriptor, std::filesystem::path path)
      : descriptor_(descriptor), path_(std::move(path)) {}
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;
  ~TemporaryFile() {
    if (descriptor_ >= 0) ::close(descriptor_);
    if (!renamed_) ::unlink(path_.c_str());
  }

  int descriptor() const { return descriptor_; }
  const std::filesystem::path& path() const { return path_; }

  // close() can report a deferred write error (NFS, quotas), so its result
  // matters and it must not be retried.
  int close_reporting_errno() {
    const int result = ::close(descriptor_);
    descriptor_ = -1;
    return result == 0 ? 0 : errno;
  }
  void mark_renamed() { renamed_ = true; }

 private:
  int descriptor_;
  std::filesystem::path path_;
  bool renamed_ = false;
};

inline TemporaryFile create_temporary_sibling(const std::filesystem::path& destination) {
  static std::atomic<unsigned long> counter{0};
  const std::filesystem::path directory =
      destination.has_parent_path() ? destination.parent_path() : std::filesystem::path(".");
  // Named after the destination where that fits, so a leftover is easy to
  // trace; a destination name near the 255-byte limit gets a short name instead.
  const std::string name = destination.filename().string();
  const std::string stem = (name.size() <= 160 ? "." + name : std::string(".ctnn-save")) + ".tmp." +
                           std::to_string(static_cast<long>(::getpid())) + ".";
  int last_error = 0;
  std::filesystem::path candidate;
  // O_EXCL never reuses a name; a leftover from a crashed process with the
  // same pid only costs another attempt.
  for (int attempt = 0; attempt < 64; ++attempt) {
    candidate = directory / (stem + std::to_string(counter.fetch_add(1)));
    const int descriptor = ::open(candidate.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (descriptor >= 0) return TemporaryFile(descriptor, candidate);
    last_error = errno;
    if (last_error != EEXIST) break;
  }
  throw SaveError("cannot write '" + destination.string() + "': creating the temporary file '" +
                  candidate.string() + "' failed: " + errno_message(last_error));
}

// Writes the concatenation of `pieces` to `destination` atomically. On any
// failure the destination is untouched, the temporary file is removed, and
// SaveError says which step failed and why.
inline void write_file_atomically(const std::filesystem::path& destination,
                                  std::span<const std::span<const std::byte>> pieces) {
  if (!destination.has_filename()) {
    throw SaveError("cannot write '" + destination.string() +
                    "': the path names a directory, expected a file name");
  }
  TemporaryFile temporary = create_temporary_sibling(destination);
  const auto fail = [&](const std::string& step, int error_number) {
    throw SaveError("cannot write '" + destination.string() + "': " + step + " '" +
                    temporary.path().string() + "' failed: " + errno_message(error_number));
  };

  // A replaced file keeps its permissions; a new one gets 0666 minus umask,
  // like any other newly created file. Best effort: failing to copy the mode
  // is no reason to refuse the save.
  struct stat existing {};
  if (::stat(destination.c_str(), &existing) == 0 && S_ISREG(existing.st_mode)) {
    [[maybe_unused]] const int ignored = ::fchmod(temporary.descriptor(), existing.st_mode & 07777);
  }

  for (const std::span<const std::byte> piece : pieces) {
    const char* cursor = reinterpret_cast<const char*>(piece.data());
    std::size_t remaining = piece.size();
    while (remaining > 0) {
      const ::ssize_t written = ::write(temporary.descriptor(), cursor, remaining);
      if (written < 0) {
        if (errno == EINTR) continue;
        fail("writing the temporary file", errno);
      }
      cursor += written;
      remaining -= static_cast<std::size_t>(written);
    }
  }
  if (::fsync(temporary.descriptor()) != 0) fail("fsync of the temporary file", errno);
  if (const int error_number = temporary.close_reporting_errno(); error_number != 0) {
    fail("closing the temporary file", error_number);
  }
  if (::rename(temporary.path().c_str(), destination.c_str()) != 0) {
    const int error_number = errno;
    throw SaveError("cannot write '" + destination.string() + "': renaming the temporary file '" +
                    temporary.path().string() + "' over it failed: " + errno_message(error_number));
  }
  temporary.mark_renamed();

  // Make the rename itself durable. The new contents are already in place, so
  // a failure here cannot be reported as "destination untouched"; ignore it.
  const std::filesystem::path directory =
      destination.has_parent_path() ? destination.parent_path() : std::filesystem::path(".");
  const int directory_descriptor = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (directory_descriptor >= 0) {
    [[maybe_unused]] const int ignored = ::fsync(directory_descriptor);
    ::close(directory_descriptor);
  }
}

}  // namespace ctnn::detail
