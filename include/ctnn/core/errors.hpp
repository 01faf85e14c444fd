// Exceptions thrown by ctnn. Every message says what was expected, what was
// found, and where (a file, a tensor name, a layer), so that a user can act on it
// without a debugger.
#pragma once

#include <stdexcept>
#include <string>

namespace ctnn {

/// Base of every exception ctnn throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A file could not be read or parsed, or its contents do not fit the model.
/// A load that throws this leaves the model exactly as it was.
class LoadError : public Error {
 public:
  using Error::Error;
};

/// A file could not be written. The destination is left as it was.
class SaveError : public Error {
 public:
  using Error::Error;
};

/// Arguments whose sizes or values do not fit together (batch sizes of a loss,
/// a class label out of range, ...).
class ShapeError : public Error {
 public:
  using Error::Error;
};

class ValueError : public Error {
 public:
  using Error::Error;
};

}  // namespace ctnn
