// Which instruction set the kernels run on, chosen once per model.
//
// What we ship: every kernel exists for AVX-512, AVX2+FMA and SSE4.2 in the same
// binary; a Model picks one when it is constructed (the best the CPU has, unless
// forced), stores it in its Context, and each layer dispatches on it with one
// predictable switch per kernel call. When the translation unit is compiled with
// AVX-512 and FMA enabled (-march=native on an AVX-512 machine) only the AVX-512
// kernels are compiled and the choice is static: no switch, and the kernels can
// inline into the layers. Compiling with AVX2+FMA enabled leaves AVX2 and
// AVX-512.
//
// Why the kernels are not written with xsimd batches. xsimd 8.1 decides at
// preprocessing time which architectures have code, from the compiler's macros
// (__AVX512F__, __AVX2__, __FMA__): in a translation unit compiled without
// -mavx512f, `xsimd::batch<float, xsimd::avx512f>` is an incomplete type
// ("usage of simd_register with unsupported architecture"), even inside a
// function marked __attribute__((target("avx512f"))). Wrapping the xsimd include
// in `#pragma GCC target` does not help either (tried: same error with g++ 12;
// clang 14 has no such pragma at all), and it could not work in principle: a
// header is included once, so every xsimd function would be compiled for one
// instruction set, and the SSE4.2 path would execute AVX-512 code. A header-only
// library cannot rely on separate translation units with different flags, so
// xsimd can give us only what the user's flags already enable.
//
// What works on both g++ 12 and clang 14 (checked by disassembly, and by
// tests/test_kernels.cpp which runs every kernel under every architecture the
// CPU has): the kernel bodies are written once, with the compilers' vector
// extensions (`float __attribute__((vector_size(64)))`) plus a few intrinsics
// (FMA, masked loads and stores), and kernels/detail/per_arch.hpp includes that
// body once per architecture, each time in its own namespace and inside a
// region where every function gets that architecture's target attribute
// (`#pragma GCC target` on g++, `#pragma clang attribute push(target(...))` on
// clang). This is Highway's foreach_target technique. Two rules keep it sound:
// nothing is #included inside a region (a standard header first seen there would
// be compiled for AVX-512 and shared with everyone), and the bodies use no
// lambdas (g++ gives a lambda's function-pointer conversion the default target,
// and -Wpsabi rejects vectors crossing that boundary). Shuffles go through one
// helper (body/simd.hpp): __builtin_shufflevector on clang, __builtin_shuffle
// with a constant mask on g++, whose result is the same instruction, and which
// nvcc's front end also accepts (it mangles a pack expansion in the former).
// The simpler alternative,
// generic vector code in plain templates called from target-attributed,
// flattened entry points, was tried and rejected: g++ lowers a 64-byte vector
// type declared outside a target region to SSE2 pieces before inlining, and
// clang rejects the vector-typed calls with -Wpsabi.
//
// xsimd still provides the vocabulary: the architecture tags the kernels are
// overloaded on (xsimd::avx512f, xsimd::fma3<xsimd::avx2>, xsimd::sse4_2, with
// their names and alignments), and the CPU detection
// (xsimd::available_architectures(); we add the XGETBV check of what the OS
// saves, which xsimd 8.1 does not do).
//
// Cost of the choice: one switch on the Context's arch per kernel call, and a
// call that cannot be inlined across target attributes (a few ns per layer at
// batch 1; nothing at -march=native, where the choice is static).
//
// Other CPUs, or CTNN_PORTABLE_KERNELS: the same body is compiled once more
// without any target attribute, 4 floats wide (`Arch::generic`), and nothing
// else; tests/meson.build builds the test suite that way too.
//
// Forcing an architecture: the environment variable CTNN_ARCH (sse4_2, avx2,
// avx512 or native), read once per process, or set_default_arch() in a program;
// both apply to models constructed afterwards. A request the CPU cannot run
// falls back to the best architecture below it that it can.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include <xsimd/config/xsimd_arch.hpp>

#include "ctnn/core/errors.hpp"

namespace ctnn::kernels {

/// An instruction set the kernels are built for. `automatic` (the value of a
/// default-constructed Context) means "the process default"; `generic` is the
/// portable build (4-float vectors, no target attributes).
enum class Arch : std::uint8_t { automatic = 0, generic = 1, sse4_2 = 2, avx2 = 3, avx512 = 4 };

/// The xsimd tag each architecture's kernels are overloaded on.
using generic_tag = xsimd::generic;
using sse4_2_tag = xsimd::sse4_2;
using avx2_tag = xsimd::fma3<xsimd::avx2>;
using avx512_tag = xsimd::avx512f;

/// The architecture whose kernels take `Tag`: dispatch(arch_of<Tag>, f) calls
/// f with Tag again.
template <class Tag>
inline constexpr Arch arch_of = std::is_same_v<Tag, avx512_tag> ? Arch::avx512
                                : std::is_same_v<Tag, avx2_tag> ? Arch::avx2
                                : std::is_same_v<Tag, sse4_2_tag> ? Arch::sse4_2
                                                                  : Arch::generic;

constexpr std::string_view arch_name(Arch a) {
  switch (a) {
    case Arch::generic: return "generic";
    case Arch::sse4_2: return "sse4_2";
    case Arch::avx2: return "avx2";
    case Arch::avx512: return "avx512";
    default: return "automatic";
  }
}

/// Floats per vector register.
constexpr std::size_t arch_lanes(Arch a) {
  switch (a) {
    case Arch::avx512: return avx512_tag::alignment() / sizeof(float);
    case Arch::avx2: return avx2_tag::alignment() / sizeof(float);
    default: return 4;
  }
}

inline std::optional<Arch> parse_arch(std::string_view s) {
  if (s == "generic") return Arch::generic;
  if (s == "sse4_2" || s == "sse4.2" || s == "sse") return Arch::sse4_2;
  if (s == "avx2") return Arch::avx2;
  if (s == "avx512" || s == "avx512f") return Arch::avx512;
  if (s == "native" || s == "auto" || s == "automatic" || s.empty()) return Arch::automatic;
  return std::nullopt;
}

// ---- what is compiled in ----------------------------------------------------

#if (defined(__x86_64__) || defined(__i386__)) && !defined(CTNN_PORTABLE_KERNELS)
#define CTNN_X86_KERNELS 1
#endif

// The architectures with compiled kernels: those at or above what the compiler
// flags already guarantee (SSE4.2 without flags). With -march=native on an
// AVX-512 machine only AVX-512 is left, and the choice is static.
#if !defined(CTNN_X86_KERNELS)
#define CTNN_COMPILE_GENERIC 1
inline constexpr Arch compiled_baseline = Arch::generic;
#elif defined(__AVX512F__) && defined(__AVX2__) && defined(__FMA__)
#define CTNN_COMPILE_AVX512 1
inline constexpr Arch compiled_baseline = Arch::avx512;
#elif defined(__AVX2__) && defined(__FMA__)
#define CTNN_COMPILE_AVX2 1
#define CTNN_COMPILE_AVX512 1
inline constexpr Arch compiled_baseline = Arch::avx2;
#else
#define CTNN_COMPILE_SSE4_2 1
#define CTNN_COMPILE_AVX2 1
#define CTNN_COMPILE_AVX512 1
inline constexpr Arch compiled_baseline = Arch::sse4_2;
#endif

#if !defined(CTNN_COMPILE_SSE4_2) && !defined(CTNN_COMPILE_AVX2)
#define CTNN_STATIC_ARCH 1
#endif

/// True when one architecture is compiled in and dispatch costs nothing.
inline constexpr bool static_arch =
#if defined(CTNN_STATIC_ARCH)
    true;
#else
    false;
#endif

constexpr bool is_compiled(Arch a) {
  if (a == Arch::automatic) return false;
  if (static_arch) return a == compiled_baseline;
  return a >= compiled_baseline;
}

// ---- what the CPU has ---------------------------------------------------------

namespace detail {
/// XCR0: the register states the operating system saves on a context switch.
inline std::uint64_t os_saved_states() {
#if defined(CTNN_X86_KERNELS)
  unsigned eax = 1, ebx = 0, ecx = 0, edx = 0;
  __asm__("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx));
  (void)ebx;
  (void)edx;
  if (!(ecx & (1u << 27))) return 0;  // no OSXSAVE: no XGETBV
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (std::uint64_t{hi} << 32) | lo;
#else
  return 0;
#endif
}
}  // namespace detail

/// True if this CPU (and its OS) can run `a`'s kernels.
inline bool cpu_supports(Arch a) {
  static const auto cpu = xsimd::available_architectures();
  static const std::uint64_t xcr0 = detail::os_saved_states();
  const bool ymm_saved = (xcr0 & 0x6) == 0x6;
  const bool zmm_saved = (xcr0 & 0xe6) == 0xe6;
  switch (a) {
    case Arch::generic: return true;
    case Arch::sse4_2: return cpu.sse4_2;
    case Arch::avx2: return cpu.fma3_avx2 && ymm_saved;
    case Arch::avx512: return cpu.avx512f && cpu.fma3_avx2 && zmm_saved;
    default: return false;
  }
}

/// True if kernels for `a` are compiled in and the CPU can run them.
inline bool available(Arch a) { return is_compiled(a) && cpu_supports(a); }

/// The best available architecture at or below `limit`.
inline Arch best_arch(Arch limit = Arch::avx512) {
  for (Arch a : {Arch::avx512, Arch::avx2, Arch::sse4_2, Arch::generic})
    if (a <= limit && available(a)) return a;
  if (available(compiled_baseline)) return compiled_baseline;
  throw Error("ctnn: this CPU cannot run the kernels compiled in (" + std::string(arch_name(compiled_baseline)) +
              " and above); build without -march flags, or with CTNN_PORTABLE_KERNELS");
}

namespace detail {
inline Arch arch_from_environment() {
  const char* env = std::getenv("CTNN_ARCH");
  if (!env) return best_arch();
  const auto a = parse_arch(env);
  if (!a)
    throw ValueError("ctnn: CTNN_ARCH='" + std::string(env) +
                     "' is not an architecture: use sse4_2, avx2, avx512, generic or native");
  return *a == Arch::automatic ? best_arch() : best_arch(*a);
}
inline Arch& default_arch_slot() {
  static Arch a = arch_from_environment();
  return a;
}
}  // namespace detail

/// The architecture a new model uses: CTNN_ARCH if set (read once per
/// process), else the best the CPU has; set_default_arch() overrides both.
inline Arch default_arch() { return detail::default_arch_slot(); }

/// `a` as a model will run it (`automatic`: the best available), or a
/// ValueError naming `caller` when this CPU cannot run it or it is not
/// compiled into this program (see CTNN_STATIC_ARCH).
inline Arch require_available(Arch a, std::string_view caller) {
  if (a == Arch::automatic) a = best_arch();
  if (!available(a))
    throw ValueError("ctnn: " + std::string(caller) + "(" + std::string(arch_name(a)) + "): " +
                     (is_compiled(a) ? "this CPU cannot run it" : "not compiled into this program"));
  return a;
}

/// Forces the architecture of models constructed from now on (tests and
/// benchmarks). Throws if this CPU cannot run it or it is not compiled in.
inline void set_default_arch(Arch a) { detail::default_arch_slot() = require_available(a, "set_default_arch"); }

/// `a`, or the process default when it is `automatic`.
inline Arch resolve(Arch a) { return a == Arch::automatic ? default_arch() : a; }

/// Calls f(tag) with the xsimd tag of `a`'s kernels: one switch, or nothing
/// when only one architecture is compiled in.
template <class F>
inline decltype(auto) dispatch([[maybe_unused]] Arch a, F&& f) {
#if !defined(CTNN_X86_KERNELS)
  return f(generic_tag{});
#elif defined(CTNN_STATIC_ARCH)
  return f(avx512_tag{});
#else
  const Arch r = a == Arch::automatic ? default_arch() : a;
  if constexpr (is_compiled(Arch::avx512))
    if (r == Arch::avx512) return f(avx512_tag{});
  if constexpr (is_compiled(Arch::avx2))
    if (r >= Arch::avx2) return f(avx2_tag{});
  if constexpr (is_compiled(Arch::sse4_2)) return f(sse4_2_tag{});
  else if constexpr (is_compiled(Arch::avx2)) return f(avx2_tag{});
  else return f(avx512_tag{});
#endif
}

}  // namespace ctnn::kernels
