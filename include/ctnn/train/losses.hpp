// Every loss of ctnn::train. Each one is an aggregate of PyTorch's options with
// a `compute` kernel over raw rows x cols buffers.
#pragma once

#include "ctnn/train/losses/bce_with_logits.hpp"
#include "ctnn/train/losses/cross_entropy.hpp"
#include "ctnn/train/losses/huber.hpp"
#include "ctnn/train/losses/l1.hpp"
#include "ctnn/train/losses/mse.hpp"
#include "ctnn/train/losses/nll.hpp"
#include "ctnn/train/losses/reduction.hpp"
#include "ctnn/train/losses/smooth_l1.hpp"
