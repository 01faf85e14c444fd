// The whole library for CPU programs. CUDA offload is <ctnn/cuda.hpp>.
#pragma once

#include "ctnn/core/batch.hpp"
#include "ctnn/core/errors.hpp"
#include "ctnn/core/inference_model.hpp"
#include "ctnn/core/model.hpp"
#include "ctnn/core/rng.hpp"
#include "ctnn/core/thread_pool.hpp"

#include "ctnn/layers/activation.hpp"
#include "ctnn/layers/batch_norm.hpp"
#include "ctnn/layers/dropout.hpp"
#include "ctnn/layers/flatten.hpp"
#include "ctnn/layers/layer_norm.hpp"
#include "ctnn/layers/linear.hpp"
#include "ctnn/layers/softmax.hpp"

#include "ctnn/compose/functional.hpp"
#include "ctnn/compose/heads.hpp"
#include "ctnn/compose/mlp.hpp"
#include "ctnn/compose/named.hpp"
#include "ctnn/compose/residual.hpp"
#include "ctnn/compose/sequential.hpp"

#include "ctnn/module/module.hpp"
#include "ctnn/module/symbolic.hpp"

#include "ctnn/train/checkpoint.hpp"
#include "ctnn/train/init.hpp"
#include "ctnn/train/loss.hpp"
#include "ctnn/train/losses.hpp"
#include "ctnn/train/optim.hpp"

#include "ctnn/io/print.hpp"
#include "ctnn/io/state_dict.hpp"
