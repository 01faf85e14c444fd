// Every optimizer of ctnn::optim. Each works on a model's ParameterView: one
// flat parameter buffer and its gradients.
#pragma once

#include "ctnn/train/optim/adam.hpp"
#include "ctnn/train/optim/adamw.hpp"
#include "ctnn/train/optim/parameter_view.hpp"
#include "ctnn/train/optim/rmsprop.hpp"
#include "ctnn/train/optim/sgd.hpp"
#include "ctnn/train/optim/state.hpp"
