// The vanilla LSTM scan over time on the CPU, forward and backward, for cpp_scan.py.
//
// The batch is split into one slice of rows per thread, and each thread runs every time step
// of its slice on its own: a one-thread GEMM for the recurrent share of the gates, then one
// fused loop for the gate math. Rows never depend on each other, so the whole scan is one
// parallel region with no barrier, where the Python scan forks and joins the threads for each
// of its ~8 (forward) and ~13 (backward) ops per step.
//
// Buffers (all contiguous, made by cpp_scan.py): acts (T, B, 4H) holds the input's share of
// the gates plus both biases on entry and the activations i, f, g, o on return; hs, cs
// (T + 1, B, H) the outputs and cells with one zero slot where the scan starts (zero past each
// length); tanh_cs (T, B, H) tanh(c_t); valid (T, B) whether step t is inside row b's length.

#include <torch/extension.h>

#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>

namespace {

// exp(x) for float in a form the compiler vectorizes (Cephes' expf: range reduction by ln 2
// and a degree-5 polynomial, within 2 ulp); NaN stays NaN.
inline float exp_approx(float x) {
  x = x > 88.3f ? 88.3f : x;
  x = x < -87.3f ? -87.3f : x;
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return y * scale;
}

inline double exp_approx(double x) { return std::exp(x); }

template <typename T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + exp_approx(-x));
}

template <typename T>
inline T tanh_(T x) {
  return T(2) / (T(1) + exp_approx(T(-2) * x)) - T(1);
}

// One step's gate math for one row: `gates` holds the input's share of the pre-activations
// and `rec` the recurrent one; the activations i, f, g, o are written over `gates`.
template <typename T>
inline void cell_row(T* __restrict gates, const T* __restrict rec, const T* __restrict c_prev,
                     T* __restrict c_out, T* __restrict h_out, T* __restrict tanh_out,
                     int64_t H) {
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    const T i = sigmoid(gates[j] + rec[j]), f = sigmoid(gates[H + j] + rec[H + j]);
    const T g = tanh_(gates[2 * H + j] + rec[2 * H + j]);
    const T o = sigmoid(gates[3 * H + j] + rec[3 * H + j]);
    const T c = f * c_prev[j] + i * g;
    const T tc = tanh_(c);
    gates[j] = i;
    gates[H + j] = f;
    gates[2 * H + j] = g;
    gates[3 * H + j] = o;
    c_out[j] = c;
    tanh_out[j] = tc;
    h_out[j] = o * tc;
  }
}

// One step back for one row: the gates' activations are replaced by the loss's gradients by
// their pre-activations; dc becomes the gradient reaching the previous cell.
template <typename T>
inline void cell_row_back(T* __restrict gates, const T* __restrict c_prev,
                          const T* __restrict tanh_c, const T* __restrict dh,
                          T* __restrict dc, int64_t H) {
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    const T i = gates[j], f = gates[H + j], g = gates[2 * H + j], o = gates[3 * H + j];
    const T tc = tanh_c[j];
    const T dc_t = dc[j] + dh[j] * o * (T(1) - tc * tc);
    gates[j] = dc_t * g * i * (T(1) - i);
    gates[H + j] = dc_t * c_prev[j] * f * (T(1) - f);
    gates[2 * H + j] = dc_t * i * (T(1) - g * g);
    gates[3 * H + j] = dh[j] * tc * o * (T(1) - o);
    dc[j] = dc_t * f;
  }
}

// a @ w^T (+ bias): through oneDNN's matmul for float32 where torch has it, else at::mm. On
// the AMD EPYC Zen 4 measured, oneDNN runs the per-step shapes at 83-98 GFLOP/s a thread
// against at::mm's 64-93, and the input projection and the input gradient at 62 and 107
// against 56 and 78 (two bench runs: forward+backward 1.06x nn.LSTM, against 1.14x with at::mm
// for those two, one thread); on the Zen 3, the input gradient at 68 against 60. oneDNN makes
// a kernel for each new shape, once (its primitive cache).
at::Tensor times_t(const at::Tensor& a, const at::Tensor& w,
                   const std::optional<at::Tensor>& bias = std::nullopt) {
  using Sig = at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                         c10::string_view, c10::List<std::optional<at::Scalar>>,
                         std::optional<c10::string_view>);
  static const auto op = [] {
    auto handle = c10::Dispatcher::singleton().findOp({"mkldnn::_linear_pointwise", ""});
    return handle ? std::optional(handle->typed<Sig>()) : std::nullopt;
  }();
  if (op && a.scalar_type() == at::kFloat) {
    return op->call(a, w, bias, "none", c10::List<std::optional<at::Scalar>>(), std::nullopt);
  }
  return bias ? at::addmm(*bias, a, w.t()) : at::mm(a, w.t());
}

// The per-step GEMM a @ b, b (K, N), through the library that runs those small shapes fastest
// on this chip, measured on two: oneDNN with AVX-512 (times_t; the AMD EPYC Zen 4), MKL's
// at::mm into a reused buffer with AVX2 only (the AMD EPYC Zen 3: 7-17% less scan time in one
// process, interleaved). The build is -march=native, so __AVX512F__ says which chip this is.
class StepGemm {
 public:
  explicit StepGemm(const at::Tensor& b) {
#ifdef __AVX512F__
    onednn_ = b.scalar_type() == at::kFloat;
#endif
    b_ = onednn_ ? b.t().contiguous() : b.contiguous();  // oneDNN takes it as (N, K)
  }

  // The MKL path's output buffer for `rows` rows, one per thread (none for oneDNN's).
  at::Tensor buffer(int64_t rows) const {
    return onednn_ ? at::Tensor() : at::empty({rows, b_.size(1)}, b_.options());
  }

  // a (n, K) @ b, into `out` from buffer(n) on the MKL path.
  at::Tensor operator()(const at::Tensor& a, at::Tensor& out) const {
    return onednn_ ? times_t(a, b_) : at::mm_out(out, a, b_);
  }

 private:
  bool onednn_ = false;
  at::Tensor b_;
};

template <typename T>
void forward_rows(const at::Tensor& acts, const StepGemm& times_w, const bool* valid,
                  const at::Tensor& hs, const at::Tensor& cs, const at::Tensor& tanh_cs,
                  bool reverse, int64_t b0, int64_t b1) {
  const int64_t T_ = acts.size(0), B = acts.size(1), H = hs.size(2), n = b1 - b0;
  const int64_t a = reverse ? 0 : 1, p = reverse ? 1 : 0;
  T* acts_p = acts.data_ptr<T>();
  T* hs_p = hs.data_ptr<T>();
  T* cs_p = cs.data_ptr<T>();
  T* tanh_p = tanh_cs.data_ptr<T>();
  at::Tensor buffer = times_w.buffer(n);
  for (int64_t k = 0; k < T_; ++k) {
    const int64_t t = reverse ? T_ - 1 - k : k;
    const at::Tensor rec = times_w(hs[t + p].narrow(0, b0, n), buffer);  // (n, 4H)
    const T* rec_p = rec.data_ptr<T>();
    for (int64_t b = b0; b < b1; ++b) {
      T* h_out = hs_p + ((t + a) * B + b) * H;
      T* c_out = cs_p + ((t + a) * B + b) * H;
      if (valid[t * B + b]) {
        cell_row(acts_p + (t * B + b) * 4 * H, rec_p + (b - b0) * 4 * H,
                 cs_p + ((t + p) * B + b) * H, c_out, h_out, tanh_p + (t * B + b) * H, H);
      } else {  // past its length a row outputs zeros; no later step reads its state (forward:
                // its steps are over; reverse: it starts later, from the zero state)
        std::fill(h_out, h_out + H, T(0));
        std::fill(c_out, c_out + H, T(0));
      }
    }
  }
}

template <typename T>
void backward_rows(const at::Tensor& acts, const StepGemm& times_w, const bool* valid,
                   const at::Tensor& cs, const at::Tensor& tanh_cs, const at::Tensor& d_out,
                   const at::Tensor& dh, const at::Tensor& dc, bool reverse, int64_t b0,
                   int64_t b1) {
  const int64_t T_ = acts.size(0), B = acts.size(1), H = cs.size(2), n = b1 - b0;
  const int64_t p = reverse ? 1 : 0;
  T* acts_p = acts.data_ptr<T>();
  const T* cs_p = cs.data_ptr<T>();
  const T* tanh_p = tanh_cs.data_ptr<T>();
  const T* d_out_p = d_out.data_ptr<T>();
  T* dh_p = dh.data_ptr<T>();
  T* dc_p = dc.data_ptr<T>();
  at::Tensor buffer = times_w.buffer(n);
  for (int64_t k = 0; k < T_; ++k) {
    const int64_t t = reverse ? k : T_ - 1 - k;
    for (int64_t b = b0; b < b1; ++b) {
      T* gates = acts_p + (t * B + b) * 4 * H;
      if (valid[t * B + b]) {
        T* dh_b = dh_p + b * H;
        const T* d_out_b = d_out_p + (t * B + b) * H;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) dh_b[j] += d_out_b[j];
        cell_row_back(gates, cs_p + ((t + p) * B + b) * H, tanh_p + (t * B + b) * H, dh_b,
                      dc_p + b * H, H);
      } else {  // past its length a row passes its gradient straight on
        std::fill(gates, gates + 4 * H, T(0));
      }
    }
    const at::Tensor dh_prev = times_w(acts[t].narrow(0, b0, n), buffer);  // (n, H)
    const T* dh_prev_p = dh_prev.data_ptr<T>();
    for (int64_t b = b0; b < b1; ++b) {
      if (valid[t * B + b]) {
        std::memcpy(dh_p + b * H, dh_prev_p + (b - b0) * H, H * sizeof(T));
      }
    }
  }
}

// Rows per thread, so that at::parallel_for gives every thread one contiguous slice.
int64_t slice_rows(int64_t B) {
  const int64_t threads = at::get_num_threads();
  return std::max<int64_t>((B + threads - 1) / threads, 1);
}

void forward(at::Tensor acts, at::Tensor w_hh, at::Tensor valid, at::Tensor hs, at::Tensor cs,
             at::Tensor tanh_cs, bool reverse) {
  const bool* valid_p = valid.data_ptr<bool>();
  const StepGemm times_w(w_hh.t());
  AT_DISPATCH_FLOATING_TYPES(acts.scalar_type(), "lstm_scan_forward", [&] {
    at::parallel_for(0, acts.size(1), slice_rows(acts.size(1)), [&](int64_t b0, int64_t b1) {
      const at::AutoDispatchBelowADInplaceOrView below_autograd;  // worker threads too
      forward_rows<scalar_t>(acts, times_w, valid_p, hs, cs, tanh_cs, reverse, b0, b1);
    });
  });
}

void backward(at::Tensor acts, at::Tensor w_hh, at::Tensor valid, at::Tensor cs,
              at::Tensor tanh_cs, at::Tensor d_out, at::Tensor dh, at::Tensor dc,
              bool reverse) {
  const bool* valid_p = valid.data_ptr<bool>();
  const StepGemm times_w(w_hh);
  AT_DISPATCH_FLOATING_TYPES(acts.scalar_type(), "lstm_scan_backward", [&] {
    at::parallel_for(0, acts.size(1), slice_rows(acts.size(1)), [&](int64_t b0, int64_t b1) {
      const at::AutoDispatchBelowADInplaceOrView below_autograd;
      backward_rows<scalar_t>(acts, times_w, valid_p, cs, tanh_cs, d_out, dh, dc, reverse, b0,
                              b1);
    });
  });
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "LSTM scan forward, in place (cpp_scan.py)");
  m.def("backward", &backward, "LSTM scan backward, in place (cpp_scan.py)");
  m.def("times_t", &times_t, "a @ w^T (+ bias), through oneDNN for float32", pybind11::arg("a"),
        pybind11::arg("w"), pybind11::arg("bias") = std::nullopt);
}
