// The value a loss function returns: `auto loss = loss_fn(model(x), y);
// loss.item(); loss.backward();`. A loss on a training-mode output writes
// dLoss/dOutput into the model's output-gradient slot when it is computed;
// backward() then runs the model's static backward from there. Losses add and
// scale (`(ce + 0.5f * mse).backward()`, the multi-task tutorial's sum) without
// allocating.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>

#include "ctnn/core/batch.hpp"
#include "ctnn/core/errors.hpp"
#include "ctnn/core/graph.hpp"

namespace ctnn {

class Loss {
 public:
  static constexpr std::size_t max_terms = 8;

  Loss() = default;
  explicit Loss(double value) : value_(value) {}
  Loss(double value, const detail::LossTerm& term) : value_(value), count_(1) { terms_[0] = term; }

  /// The loss as PyTorch's loss.item() (float32).
  float item() const { return static_cast<float>(value_); }
  /// The loss accumulated in double.
  double value() const { return value_; }
  /// True when backward() has a model output to reach.
  bool requires_grad() const { return count_ > 0; }

  /// Gradients of every trainable parameter of the model(s) whose outputs this
  /// loss depends on, accumulated into their gradient buffers.
  void backward() const {
    if (count_ == 0)
      throw Error(
          "ctnn: backward() on a loss that depends on no training-mode model output; the model was in eval() "
          "mode during the forward (call model.train() first)");
    // Terms of one model run one backward together.
    std::array<bool, max_terms> done{};
    for (std::size_t i = 0; i < count_; ++i) {
      if (done[i]) continue;
      std::array<detail::LossTerm, max_terms> group{};
      std::size_t g = 0;
      for (std::size_t j = i; j < count_; ++j)
        if (!done[j] && terms_[j].link.owner == terms_[i].link.owner) {
          group[g++] = terms_[j];
          done[j] = true;
        }
      terms_[i].link.owner->backward_from(std::span<const detail::LossTerm>(group.data(), g));
    }
  }

  Loss& operator+=(const Loss& other) {
    value_ += other.value_;
    for (std::size_t j = 0; j < other.count_; ++j) add_term(other.terms_[j]);
    return *this;
  }
  Loss& operator*=(float k) {
    value_ *= k;
    for (std::size_t i = 0; i < count_; ++i) terms_[i].scale *= k;
    return *this;
  }
  friend Loss operator+(Loss a, const Loss& b) { return a += b; }
  friend Loss operator*(Loss a, float k) { return a *= k; }
  friend Loss operator*(float k, Loss a) { return a *= k; }
  friend Loss operator/(Loss a, float k) { return a *= 1.0f / k; }

 private:
  void add_term(const detail::LossTerm& t) {
    for (std::size_t i = 0; i < count_; ++i)
      if (terms_[i].link.owner == t.link.owner && terms_[i].link.head == t.link.head &&
          terms_[i].writer == t.writer) {
        terms_[i].scale += t.scale;
        return;
      }
    if (count_ == max_terms) throw Error("ctnn: a sum of losses may depend on at most 8 distinct model outputs");
    terms_[count_++] = t;
  }

  double value_ = 0.0;
  std::array<detail::LossTerm, max_terms> terms_{};
  std::size_t count_ = 0;
};

namespace detail {

template <class T>
concept ClassTargets = requires(const T& t) {
  { t.data() } -> std::convertible_to<const std::int64_t*>;
  { t.rows() } -> std::convertible_to<std::size_t>;
};

template <std::size_t PredictionFeatures, std::size_t TargetFeatures>
struct loss_target_width_check {
  static_assert(PredictionFeatures == TargetFeatures,
                "ctnn: a loss needs targets with as many features as the predictions (PredictionFeatures, "
                "TargetFeatures in this check's arguments)");
  static constexpr bool ok = true;
};

/// Shared by every loss's operator(): checks the shapes, and on a training-mode
/// output claims the model's gradient slot and fills it.
template <class Fn, class Pred, class Target>
Loss evaluate_loss(const Fn& fn, const Pred& pred, const Target& target) {
  constexpr std::size_t cols = Pred::row_size;
  const std::size_t rows = pred.rows();
  if constexpr (!ClassTargets<Target>) static_assert(loss_target_width_check<cols, Target::row_size>::ok);
  if (target.rows() != rows)
    throw ShapeError("ctnn: " + std::string(Fn::name) + ": predictions have " + std::to_string(rows) +
                     " rows but targets have " + std::to_string(target.rows()));
  const GradLink link = pred.grad_link();
  if (!link) return Loss(fn.compute(pred.data(), target.data(), rows, cols, nullptr));
  LossTerm term{link, 0, 1.0f};
  float* slot = link.owner->claim_output_gradient(link, rows, cols, term.writer);
  const double value = fn.compute(pred.data(), target.data(), rows, cols, slot);
  return Loss(value, term);
}

}  // namespace detail
}  // namespace ctnn
