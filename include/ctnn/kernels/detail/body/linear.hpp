// The fully connected layer's kernels for one architecture, and their entry
// points: overloads of ctnn::kernels::linear_* taking this architecture's xsimd
// tag first. Shapes are template arguments, so the choice of kernel is made at
// compile time and small layers unroll. Part of the per-architecture body.
#if !defined(CTNN_KERNELS_NS)
// Included on its own: this is what kernels/detail/per_arch.hpp includes once
// per architecture, with the macros set.
#include "ctnn/kernels/detail/per_arch.hpp"
#else

namespace ctnn::kernels::CTNN_KERNELS_NS {

/// Rows below which the forward reads the weight rows in place (dot products)
/// instead of packing them for the GEMM.
inline constexpr std::size_t dot_forward_max_rows = 4;

/// J outputs of one row: y[j] = act(Σ_k x[k]·w[j·In + k] + bias[j]), the J
/// dot products accumulated side by side (k outer, so J independent chains)
/// and reduced together into one vector.
template <class Act, std::size_t In, std::size_t J>
CTNN_INLINE void forward_dot_block(const float* w, const float* bias, const V* xv, float* z, float* y) {
  constexpr std::size_t full = In / lanes, tail = In % lanes;
  V acc[lanes] = {};
#pragma GCC unroll 4
  for (std::size_t k = 0; k < full; ++k) {
#pragma GCC unroll 16
    for (std::size_t j = 0; j < J; ++j) acc[j] = fma(load(w + j * In + k * lanes), xv[k], acc[j]);
  }
  if constexpr (tail != 0) {
#pragma GCC unroll 16
    for (std::size_t j = 0; j < J; ++j) acc[j] = fma(load_first(w + j * In + full * lanes, tail), xv[full], acc[j]);
  }
  V out = reduce_lanes(acc);
  if (bias) out += J == lanes ? load(bias) : load_first(bias, J);
  if constexpr (J == lanes) {
    if (z) store(z, out);
    store(y, activation_f<Act>(out));
  } else {
    if (z) store_first(z, out, J);
    store_first(y, activation_f<Act>(out), J);
  }
}

/// Lane j of the result is element K + In·j of the In vectors `block`, that
/// is column K of the lanes × In row-major block they hold. In - 1 two-source
/// shuffles: the first takes the lanes that lie in block[0] and block[1], each
/// next one those that lie in block[S].
template <std::size_t In, std::size_t K>
struct ColumnFirst {
  static constexpr std::size_t at(std::size_t lane) {
    const std::size_t e = K + In * lane;
    return e / lanes == 0 ? e % lanes : lanes + e % lanes;
  }
};
template <std::size_t In, std::size_t K, std::size_t S>
struct ColumnNext {
  static constexpr std::size_t at(std::size_t lane) {
    const std::size_t e = K + In * lane;
    return e / lanes == S ? lanes + e % lanes : lane;
  }
};
template <std::size_t In, std::size_t K, std::size_t... S>
CTNN_INLINE V column_of(const V* block, std::index_sequence<S...>) {
  if constexpr (In == 1) {
    return block[0];
  } else {
    V col = shuffle<ColumnFirst<In, K>>(block[0], block[1]);
    ((col = shuffle<ColumnNext<In, K, S + 2>>(col, block[S + 2])), ...);
    return col;
  }
}
/// acc + Σ_K column K of block · xs[K].
template <std::size_t In, std::size_t... K>
CTNN_INLINE V multiply_columns(const V* block, const V* xs, V acc, std::index_sequence<K...>) {
  ((acc = fma(column_of<In, K>(block, std::make_index_sequence<(In > 2 ? In - 2 : 0)>{}), xs[K], acc)), ...);
  return acc;
}

/// One row, all Out outputs, reading the weight rows in place.
template <class Act, std::size_t In, std::size_t Out>
CTNN_INLINE void forward_row_dot(const float* w, const float* bias, const float* x, float* z, float* y) {
  if constexpr (In <= 4) {
    // A block of `lanes` outputs is In vectors of w; its columns, gathered with
    // shuffles, multiply the In inputs: no reduction.
    V xs[In];
#pragma GCC unroll 4
    for (std::size_t k = 0; k < In; ++k) xs[k] = splat(x[k]);
    for (std::size_t j0 = 0; j0 < Out; j0 += lanes) {
      const std::size_t count = std::min(lanes, Out - j0);
      V block[In];
#pragma GCC unroll 4
      for (std::size_t v = 0; v < In; ++v) {
        const std::size_t at = v * lanes, available = count * In;
        block[v] = at + lanes <= available ? load(w + j0 * In + at)
                                           : (at < available ? load_first(w + j0 * In + at, available - at) : V{});
      }
      V out = bias ? load_n(bias + j0, count) : V{};
      out = multiply_columns<In>(block, xs, out, std::make_index_sequence<In>{});
      if (z) store_n(z + j0, out, count);
      store_n(y + j0, activation_f<Act>(out), count);
    }
  } else {
    constexpr std::size_t full = In / lanes, tail = In % lanes;
    V xv[full + (tail ? 1 : 0)];
#pragma GCC unroll 64
    for (std::size_t k = 0; k < full; ++k) xv[k] = load(x + k * lanes);
    if constexpr (tail != 0) xv[full] = load_first(x + full * lanes, tail);
    constexpr std::size_t blocks = Out / lanes, rest = Out % lanes;
    for (std::size_t b = 0; b < blocks; ++b)
      forward_dot_block<Act, In, lanes>(w + b * lanes * In, bias ? bias + b * lanes : nullptr, xv,
                                        z ? z + b * lanes : nullptr, y + b * lanes);
    if constexpr (rest != 0)
      forward_dot_block<Act, In, rest>(w + blocks * lanes * In, bias ? bias + blocks * lanes : nullptr, xv,
                                       z ? z + blocks * lanes : nullptr, y + blocks * lanes);
  }
}

/// A single output (Out == 1): `lanes` rows at a time, reduced together, so
/// the results of consecutive rows land in one vector.
template <class Act, std::size_t In>
CTNN_INLINE void forward_single_output(const float* w, const float* bias, const float* x, float* z, float* y,
                                       std::size_t n) {
  constexpr std::size_t full = In / lanes, tail = In % lanes;
  V wv[full + (tail ? 1 : 0)];
#pragma GCC unroll 64
  for (std::size_t k = 0; k < full; ++k) wv[k] = load(w + k * lanes);
  if constexpr (tail) wv[full] = load_first(w + full * lanes, tail);
  const V b = bias ? splat(*bias) : V{};
  if (n == 1) {  // one dot product: a horizontal sum, not a reduction of `lanes` accumulators
    V acc{};
#pragma GCC unroll 64
    for (std::size_t k = 0; k < full; ++k) acc = fma(load(x + k * lanes), wv[k], acc);
    if constexpr (tail) acc = fma(load_first(x + full * lanes, tail), wv[full], acc);
    const V out = splat(sum_lanes(acc)) + b;
    if (z) *z = out[0];
    *y = activation_f<Act>(out)[0];
    return;
  }
  for (std::size_t r0 = 0; r0 < n; r0 += lanes) {
    const std::size_t count = std::min(lanes, n - r0);
    V acc[lanes];
#pragma GCC unroll 16
    for (std::size_t r = 0; r < lanes; ++r) {
      acc[r] = V{};
      if (r >= count) continue;
      const float* xr = x + (r0 + r) * In;
#pragma GCC unroll 64
      for (std::size_t k = 0; k < full; ++k) acc[r] = fma(load(xr + k * lanes), wv[k], acc[r]);
      if constexpr (tail) acc[r] = fma(load_first(xr + full * lanes, tail), wv[full], acc[r]);
    }
    const V out = reduce_lanes(acc) + b;
    if (z) store_n(z + r0, out, count);
    store_n(y + r0, activation_f<Act>(out), count);
  }
}

/// Σ_rows dy into db (+=), `Width` columns: the rows summed in order, then
/// added to db, exactly as the fused activation backward sums them (so a
/// fused pair and its two layers run apart give the same bits).
template <std::size_t Width>
CTNN_INLINE void add_column_sums(const float* dy, float* db, std::size_t n) {
  constexpr std::size_t blocks = (Width + lanes - 1) / lanes;
  V sums[blocks] = {};
  for (std::size_t r = 0; r < n; ++r) {
#pragma GCC unroll 8
    for (std::size_t v = 0; v < blocks; ++v) {
      const std::size_t count = v + 1 < blocks ? lanes : Width - v * lanes;
      sums[v] += load_n(dy + r * Width + v * lanes, count);
    }
  }
  for (std::size_t v = 0; v < blocks; ++v) {
    const std::size_t count = v + 1 < blocks ? lanes : Width - v * lanes;
    store_n(db + v * lanes, load_n(db + v * lanes, count) + sums[v], count);
  }
}

/// db[Width] += sums (sums' lanes past Width are ignored): the last step of
/// add_column_sums, for kernels that summed the columns as they stored them.
template <std::size_t Width, std::size_t Blocks>
CTNN_INLINE void add_sums(const V (&sums)[Blocks], float* db) {
  static_assert(Blocks * lanes >= Width);
#pragma GCC unroll 8
  for (std::size_t v = 0; v * lanes < Width; ++v) {
    const std::size_t count = std::min(lanes, Width - v * lanes);
    store_n(db + v * lanes, load_n(db + v * lanes, count) + sums[v], count);
  }
}

/// db[Width] += sums[Width], the column sums kept in a float buffer (the GEMM's
/// epilogue's).
template <std::size_t Width>
CTNN_INLINE void add_sums(const float* sums, float* db) {
  for (std::size_t j = 0; j < Width; j += lanes) {
    const std::size_t count = std::min(lanes, Width - j);
    store_n(db + j, load_n(db + j, count) + load_n(sums + j, count), count);
  }
}

/// Widest input gradient whose column sums the GEMM's epilogue keeps (a
/// stack buffer of this many floats); wider ones are summed in a pass after it.
inline constexpr std::size_t gemm_column_sums_max = 4096;

/// acc[i] = Σ_k a[(r0 + i)·K + k]·b[k] for R rows of a, from zero over k in
/// order (the GEMM's order), the rows' chains interleaved: one row's K FMAs
/// are one dependency chain.
template <std::size_t R, std::size_t K>
CTNN_INLINE void rows_times_vectors(const float* a, std::size_t r0, const V (&b)[K], V (&acc)[R]) {
#pragma GCC unroll 8
  for (std::size_t i = 0; i < R; ++i) acc[i] = V{};
#pragma GCC unroll 16
  for (std::size_t k = 0; k < K; ++k)
#pragma GCC unroll 8
    for (std::size_t i = 0; i < R; ++i) acc[i] = fma(splat(a[(r0 + i) * K + k]), b[k], acc[i]);
}

/// Calls f.template operator()<narrow_row_group>(r0) over [0, n) in groups of
/// rows, then f.template operator()<1>(r) for each row left.
inline constexpr std::size_t narrow_row_group = 8;
template <class F>
CTNN_INLINE void in_row_groups(std::size_t n, F&& f) {
  std::size_t r = 0;
  for (; r + narrow_row_group <= n; r += narrow_row_group) f.template operator()<narrow_row_group>(r);
  for (; r < n; ++r) f.template operator()<1>(r);
}

/// y[n, Out] = act(x · wᵀ + bias) (z = x · wᵀ + bias too, unless null) for a
/// narrow layer (In and Out at most one vector), without the GEMM: wᵀ's rows
/// are gathered once into registers, and each row's outputs are one vector,
/// summed from zero over k in order and then given the bias, as the GEMM sums
/// them (so the same bits), 8 rows at a time.
template <class Act, std::size_t In, std::size_t Out>
CTNN_INLINE void forward_narrow(const float* w, const float* bias, const float* x, float* z, float* y,
                                std::size_t n) {
  V wt[In];
#pragma GCC unroll 16
  for (std::size_t k = 0; k < In; ++k) {
    wt[k] = V{};
    for (std::size_t j = 0; j < Out; ++j) wt[k][j] = w[j * In + k];
  }
  const V b = bias ? (Out == lanes ? load(bias) : load_first(bias, Out)) : V{};
  in_row_groups(n, [&]<std::size_t R>(std::size_t r0) CTNN_LAMBDA_INLINE {
    V acc[R];
    rows_times_vectors(x, r0, wt, acc);
#pragma GCC unroll 8
    for (std::size_t i = 0; i < R; ++i) {
      const V out = acc[i] + b;
      if (z) store_n(z + (r0 + i) * Out, out, Out);
      store_n(y + (r0 + i) * Out, activation_f<Act>(out), Out);
    }
  });
}

/// Layers this narrow (In and Out at most one vector) run forward (more than
/// dot_forward_max_rows rows) and backward without the GEMM, whose packing and
/// tiles of up to 16 rows cost more than the work: a 1-wide head's weight
/// gradient is one row of C there, one chain of n FMAs, and its input
/// gradient a GEMM with k = 1.
template <std::size_t In, std::size_t Out>
inline constexpr bool narrow_layer = In <= lanes && Out <= lanes;

/// dw[Out, In] += dy[n, Out]ᵀ · x[n, In] for a narrow layer. Accumulates dw's
/// rows (Out vectors over In: one load of x's row and Out FMAs per row) or its
/// columns (In vectors over Out: one load of dy's row and In FMAs per row),
/// whichever takes fewer FMAs; with few accumulators the rows go round-robin
/// to several partial sums (8 chains in all: FMA latency × pipes), added at
/// the end in order.
template <std::size_t In, std::size_t Out>
CTNN_INLINE void backward_weight_narrow(const float* x, const float* dy, float* dw, std::size_t n) {
  constexpr bool by_rows = Out <= In;
  constexpr std::size_t count = by_rows ? Out : In;  // accumulators
  constexpr std::size_t width = by_rows ? In : Out;  // lanes used in each
  constexpr std::size_t parts = (8 + count - 1) / count;
  V acc[parts][count] = {};
  const auto add_row = [&](std::size_t p, std::size_t r) CTNN_LAMBDA_INLINE {
    const float* across = by_rows ? x + r * In : dy + r * Out;  // the row loaded as a vector
    const float* scalars = by_rows ? dy + r * Out : x + r * In;  // the row broadcast
    const V v = width == lanes ? load(across) : load_first(across, width);
#pragma GCC unroll 16
    for (std::size_t a = 0; a < count; ++a) acc[p][a] = fma(splat(scalars[a]), v, acc[p][a]);
  };
  std::size_t r = 0;
  for (; r + parts <= n; r += parts)
#pragma GCC unroll 8
    for (std::size_t p = 0; p < parts; ++p) add_row(p, r + p);
  for (std::size_t p = 0; r < n; ++r, ++p) add_row(p, r);
#pragma GCC unroll 8
  for (std::size_t p = 1; p < parts; ++p)
#pragma GCC unroll 16
    for (std::size_t a = 0; a < count; ++a) acc[0][a] += acc[p][a];
  if constexpr (by_rows) {
#pragma GCC unroll 16
    for (std::size_t j = 0; j < Out; ++j) store_n(dw + j * In, load_n(dw + j * In, In) + acc[0][j], In);
  } else {
    for (std::size_t i = 0; i < In; ++i)
      for (std::size_t j = 0; j < Out; ++j) dw[j * In + i] += acc[0][i][j];
  }
}

/// Layers with at most this many inputs or outputs and more than one vector
/// the other way (e.g. W2's Linear<1, 64> and Linear<64, 1>): their weight
/// gradient, and with few outputs their input gradient, run without the GEMM.
/// The GEMM's panels of dW's few columns would be NR wide, mostly padding (a
/// 1 -> 64 layer's dW took 7 % of W2's training step so), and with few
/// outputs its row panels would run a handful of k per tile, or one chain of
/// n FMAs per panel for a 1-wide head's dW.
inline constexpr std::size_t few_features_max = 4;

/// Outputs up to which a layer with few inputs (at most few_features_max, and
/// more outputs than a vector) runs forward without the GEMM: wᵀ's In rows sit
/// on the stack, In · Out floats (16 KiB at most).
inline constexpr std::size_t few_inputs_forward_max_outputs = 1024;

/// y[n, Out] = act(x · wᵀ + bias) (z too, unless null) for a layer with few
/// inputs and more outputs than a vector (W2's Linear<1, 64>): each row is In
/// broadcasts and In FMAs per output vector against wᵀ's rows, gathered once.
/// With so few k, the GEMM's packing, zeroed tiles and per-panel passes cost
/// more than the FMAs (Linear<1, 64>, 200 rows, AVX-512: 991 -> 419 ns
/// without an activation, 3.0 -> 2.4 µs with tanh). Each output is summed from
/// zero over k in order and then given the bias, as the GEMM sums it (the same
/// bits). Rows [r_begin, r_end).
template <class Act, std::size_t In, std::size_t Out>
CTNN_INLINE void forward_few_inputs(const float* w, const float* bias, const float* x, float* z, float* y,
                                    std::size_t r_begin, std::size_t r_end) {
  constexpr std::size_t vectors = (Out + lanes - 1) / lanes;
  // Floats in vector v (the last may be partial; a constant once unrolled).
  const auto count = [](std::size_t v) CTNN_LAMBDA_INLINE { return std::min(lanes, Out - v * lanes); };
  V wt[In][vectors], b[vectors];
  for (std::size_t v = 0; v < vectors; ++v) {
#pragma GCC unroll 4
    for (std::size_t k = 0; k < In; ++k) {
      wt[k][v] = V{};
      for (std::size_t l = 0; l < count(v); ++l) wt[k][v][l] = w[(v * lanes + l) * In + k];
    }
    b[v] = bias ? load_n(bias + v * lanes, count(v)) : V{};
  }
  for (std::size_t r = r_begin; r < r_end; ++r) {
    V xs[In];
#pragma GCC unroll 4
    for (std::size_t k = 0; k < In; ++k) xs[k] = splat(x[r * In + k]);
#pragma GCC unroll 8
    for (std::size_t v = 0; v < vectors; ++v) {
      V out{};
#pragma GCC unroll 4
      for (std::size_t k = 0; k < In; ++k) out = fma(xs[k], wt[k][v], out);
      out += b[v];
      if (z) store_n(z + r * Out + v * lanes, out, count(v));
      store_n(y + r * Out + v * lanes, activation_f<Act>(out), count(v));
    }
  }
}

/// forward_few_inputs over n rows, split over the pool like the GEMM's (each
/// row by one thread: the same bits). Out of line: inlined into
/// linear_forward, its wᵀ on the stack made the one-row path that shares the
/// function slower too (W2's Model, one row: 92 -> 123 ns).
template <class Act, std::size_t In, std::size_t Out>
[[gnu::noinline]] void forward_few_inputs_rows(const float* w, const float* bias, const float* x, float* z, float* y,
                                               std::size_t n, ThreadPool* pool) {
  const std::size_t parts = pool && n * Out * In >= gemm_parallel_min_fmas ? std::min(pool->size(), n) : 1;
  if (parts <= 1) return forward_few_inputs<Act, In, Out>(w, bias, x, z, y, 0, n);
  pool->run(parts, [&](std::size_t part) {
    forward_few_inputs<Act, In, Out>(w, bias, x, z, y, n * part / parts, n * (part + 1) / parts);
  });
}

/// dW += dyᵀ · x for a layer with few inputs (ByRows false: dW's In columns,
/// vectors over the outputs) or few outputs (ByRows true: dW's Out rows,
/// vectors over the inputs): `Vectors` vectors of the wide side from
/// `first` on, each row of the batch adding scalar · vector for each of the
/// few features (one broadcast each, one load per vector). Rows alternate
/// between two partial sums (6 to 8 FMA chains in all), added at the end:
/// every element is summed in the same order whatever the vector width.
template <std::size_t In, std::size_t Out, bool ByRows, std::size_t Vectors>
CTNN_INLINE void backward_weight_block(const float* x, const float* dy, float* dw, std::size_t n, std::size_t first) {
  constexpr std::size_t few = ByRows ? Out : In, wide = ByRows ? In : Out;
  constexpr std::size_t parts = 2;
  V acc[parts][few][Vectors] = {};
  std::size_t count[Vectors];  // floats in each vector (the last may be partial)
#pragma GCC unroll 4
  for (std::size_t v = 0; v < Vectors; ++v) count[v] = std::min(lanes, wide - (first + v * lanes));
  const auto add_row = [&](std::size_t p, std::size_t r) CTNN_LAMBDA_INLINE {
    const float* across = ByRows ? x + r * In : dy + r * Out;   // loaded as vectors
    const float* scalars = ByRows ? dy + r * Out : x + r * In;  // broadcast
    V d[Vectors];
#pragma GCC unroll 4
    for (std::size_t v = 0; v < Vectors; ++v) d[v] = load_n(across + first + v * lanes, count[v]);
#pragma GCC unroll 4
    for (std::size_t a = 0; a < few; ++a) {
      const V s = splat(scalars[a]);
#pragma GCC unroll 4
      for (std::size_t v = 0; v < Vectors; ++v) acc[p][a][v] = fma(s, d[v], acc[p][a][v]);
    }
  };
  std::size_t r = 0;
  for (; r + parts <= n; r += parts) {
    add_row(0, r);
    add_row(1, r + 1);
  }
  if (r < n) add_row(0, r);
#pragma GCC unroll 4
  for (std::size_t a = 0; a < few; ++a)
#pragma GCC unroll 4
    for (std::size_t v = 0; v < Vectors; ++v) {
      const V sum = acc[0][a][v] + acc[1][a][v];
      if constexpr (ByRows || In == 1) {  // contiguous in dW
        float* at = ByRows ? dw + a * In + first + v * lanes : dw + first + v * lanes;
        store_n(at, load_n(at, count[v]) + sum, count[v]);
      } else {
        for (std::size_t l = 0; l < count[v]; ++l) dw[(first + v * lanes + l) * In + a] += sum[l];
      }
    }
}

/// dW[Out, In] += dy[n, Out]ᵀ · x[n, In] with at most few_features_max inputs
/// or outputs: backward_weight_block over the wide side, 4, 2 or 1 vectors
/// per pass over the rows for 1, 2 or more features (8, 8, 6 or 8
/// accumulators in the two parts, within 16 registers with the loads).
template <std::size_t In, std::size_t Out>
CTNN_INLINE void backward_weight_few_features(const float* x, const float* dy, float* dw, std::size_t n) {
  constexpr bool by_rows = Out <= few_features_max && Out < In;
  constexpr std::size_t few = by_rows ? Out : In, wide = by_rows ? In : Out;
  static_assert(few <= few_features_max);
  constexpr std::size_t per_pass = few == 1 ? 4 : few == 2 ? 2 : 1;
  constexpr std::size_t vectors = (wide + lanes - 1) / lanes;
  constexpr std::size_t passes = vectors / per_pass, rest = vectors % per_pass;
  for (std::size_t p = 0; p < passes; ++p)
    backward_weight_block<In, Out, by_rows, per_pass>(x, dy, dw, n, p * per_pass * lanes);
  if constexpr (rest != 0) backward_weight_block<In, Out, by_rows, rest>(x, dy, dw, n, passes * per_pass * lanes);
}

/// dx[n, In] = dy[n, Out] · w (⊙ the activation gradient) for Out <=
/// few_features_max: per row and vector of dx, Out FMAs from zero in order of
/// k, as the GEMM sums them (the same bits), w's rows read in place.
template <std::size_t In, std::size_t Out, class GradientOf>
CTNN_INLINE void backward_input_few_outputs(const float* w, const float* dy, float* dx, std::size_t n,
                                            const ActivationGradient<GradientOf>& gradient) {
  static_assert(Out <= few_features_max);
  constexpr std::size_t vectors = (In + lanes - 1) / lanes;
  constexpr bool sums_columns = activation_form<GradientOf> != ActivationForm::none;
  V sums[sums_columns ? vectors : 1] = {};
  for (std::size_t r = 0; r < n; ++r) {
    V d[Out];
#pragma GCC unroll 4
    for (std::size_t j = 0; j < Out; ++j) d[j] = splat(dy[r * Out + j]);
    for (std::size_t v = 0; v < vectors; ++v) {
      const std::size_t count = std::min(lanes, In - v * lanes);
      V acc = V{};
#pragma GCC unroll 4
      for (std::size_t j = 0; j < Out; ++j) acc = fma(d[j], load_n(w + j * In + v * lanes, count), acc);
      const V g = apply_gradient(gradient, acc, r * In + v * lanes, count);
      store_n(dx + r * In + v * lanes, g, count);
      if constexpr (sums_columns) sums[v] += g;
    }
  }
  if constexpr (sums_columns)
    if (gradient.db) add_sums<In>(sums, gradient.db);
}

/// dx[n, In] = dy[n, Out] · w (⊙ the activation gradient) for a narrow layer:
/// w's rows stay in registers; each row's sum runs from zero over j in order,
/// as the GEMM's does, 8 rows at a time.
template <std::size_t In, std::size_t Out, class GradientOf>
CTNN_INLINE void backward_input_narrow(const float* w, const float* dy, float* dx, std::size_t n,
                                       const ActivationGradient<GradientOf>& gradient) {
  V wv[Out];
#pragma GCC unroll 16
  for (std::size_t j = 0; j < Out; ++j) wv[j] = In == lanes ? load(w + j * In) : load_first(w + j * In, In);
  constexpr bool sums_columns = activation_form<GradientOf> != ActivationForm::none;
  V sums[1] = {};
  in_row_groups(n, [&]<std::size_t R>(std::size_t r0) CTNN_LAMBDA_INLINE {
    V acc[R];
    rows_times_vectors(dy, r0, wv, acc);
#pragma GCC unroll 8
    for (std::size_t i = 0; i < R; ++i) {
      const V g = apply_gradient(gradient, acc[i], (r0 + i) * In, In);
      store_n(dx + (r0 + i) * In, g, In);
      if constexpr (sums_columns) sums[0] += g;
    }
  });
  if constexpr (sums_columns)
    if (gradient.db) add_sums<In>(sums, gradient.db);
}

}  // namespace ctnn::kernels::CTNN_KERNELS_NS

namespace ctnn::kernels {

/// y[n, Out] = act(x[n, In] · wᵀ + bias); z receives x · wᵀ + bias too unless
/// it is null; bias may be null. `pool` (optional) splits a large product's
/// rows or columns over its threads (the same bits).
template <class Act, std::size_t In, std::size_t Out>
void linear_forward(CTNN_KERNELS_TAG, const float* w, const float* bias, const float* x, float* z, float* y,
                    std::size_t n, ThreadPool* pool = nullptr) {
  using namespace CTNN_KERNELS_NS;
  if constexpr (Out == 1) {
    forward_single_output<Act, In>(w, bias, x, z, y, n);
  } else {
    if (n <= dot_forward_max_rows) {
      for (std::size_t r = 0; r < n; ++r)
        forward_row_dot<Act, In, Out>(w, bias, x + r * In, z ? z + r * Out : nullptr, y + r * Out);
      return;
    }
    if constexpr (narrow_layer<In, Out>) {
      forward_narrow<Act, In, Out>(w, bias, x, z, y, n);
    } else if constexpr (In <= few_features_max && Out <= few_inputs_forward_max_outputs) {
      forward_few_inputs_rows<Act, In, Out>(w, bias, x, z, y, n, pool);
    } else {
      constexpr std::size_t nv = Out > lanes ? 2 : 1;
      gemm<nv, ALayout::row_major>(n, Out, In, x, In, w, In, true, LinearEpilogue<Act>{y, z, bias, Out}, pool);
    }
  }
}

/// dx[n, In] = dy[n, Out] · w (overwrites dx); with an ActivationGradient<Fn>,
/// dx ⊙ Fn'(x) as each element is stored, and its column sums added to the
/// gradient's db (the same bits as separate passes).
template <std::size_t In, std::size_t Out, class GradientOf = NoActivation>
void linear_backward_input(CTNN_KERNELS_TAG, const float* w, const float* dy, float* dx, std::size_t n,
                           ThreadPool* pool = nullptr, ActivationGradient<GradientOf> gradient = {}) {
  using namespace CTNN_KERNELS_NS;
  if constexpr (narrow_layer<In, Out>) {
    backward_input_narrow<In, Out>(w, dy, dx, n, gradient);
  } else if constexpr (Out <= few_features_max) {
    backward_input_few_outputs<In, Out>(w, dy, dx, n, gradient);
  } else if constexpr (activation_form<GradientOf> != ActivationForm::none && In <= gemm_column_sums_max) {
    constexpr std::size_t nv = In > lanes ? 2 : 1;
    alignas(64) float sums[In] = {};
    gemm<nv, ALayout::row_major>(n, In, Out, dy, Out, w, In, false,
                                 StoreC<GradientOf>{dx, In, false, gradient, gradient.db ? sums : nullptr}, pool);
    if (gradient.db) add_sums<In>(sums, gradient.db);
  } else {
    constexpr std::size_t nv = In > lanes ? 2 : 1;
    gemm<nv, ALayout::row_major>(n, In, Out, dy, Out, w, In, false, StoreC<GradientOf>{dx, In, false, gradient},
                                 pool);
    if constexpr (activation_form<GradientOf> != ActivationForm::none)
      if (gradient.db) add_column_sums<In>(dx, gradient.db, n);
  }
}

/// dw[Out, In] += dy[n, Out]ᵀ · x[n, In].
template <std::size_t In, std::size_t Out>
void linear_backward_weight(CTNN_KERNELS_TAG, const float* x, const float* dy, float* dw, std::size_t n,
                            ThreadPool* pool = nullptr) {
  using namespace CTNN_KERNELS_NS;
  if constexpr (narrow_layer<In, Out>) {
    backward_weight_narrow<In, Out>(x, dy, dw, n);
  } else if constexpr (In <= few_features_max || Out <= few_features_max) {
    backward_weight_few_features<In, Out>(x, dy, dw, n);
  } else {
    constexpr std::size_t nv = In > lanes ? 2 : 1;
    gemm<nv, ALayout::col_major>(Out, In, n, dy, Out, x, In, false, StoreC<>{dw, In, true}, pool);
  }
}

/// db[Out] += Σ_rows dy.
template <std::size_t Out>
void bias_backward(CTNN_KERNELS_TAG, const float* dy, float* db, std::size_t n) {
  CTNN_KERNELS_NS::add_column_sums<Out>(dy, db, n);
}

}  // namespace ctnn::kernels

#endif  // CTNN_KERNELS_NS
