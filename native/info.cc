// nativeInfo(), thread settings and the matmul ceiling benchmark (`lethe info --bench`).
#include <dlfcn.h>

#include <chrono>

#include "bindings.h"
#include "bridge/torch_thread.h"
#include "bridge/async_job.h"
#include "bridge/options.h"
#include "bridge/device.h"
#include "bridge/tensor_convert.h"

namespace lethe {

namespace {

// The libtorch actually loaded by this process: the truth, whatever the build config said.
std::string loadedLibtorchPath() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&at::get_num_threads), &info) && info.dli_fname) return info.dli_fname;
  return "";
}

bool libraryLoaded(const char* soname) {
  void* h = dlopen(soname, RTLD_LAZY | RTLD_NOLOAD);
  if (!h) return false;
  dlclose(h);
  return true;
}

Napi::Value NativeInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object out = Napi::Object::New(env);
    out.Set("torchVersion", TORCH_VERSION);
#ifdef LETHE_WITH_CUDA
    // --no-as-needed keeps libtorch_cuda linked; check it really is loaded.
    const bool cudaCompiled = libraryLoaded("libtorch_cuda.so");
#else
    const bool cudaCompiled = false;
#endif
    const bool cudaAvailable = cudaCompiled && torch::cuda::is_available();
    out.Set("cudaCompiled", cudaCompiled);
    out.Set("cudaAvailable", cudaAvailable);
    out.Set("cudaDeviceCount", Napi::Number::New(env, cudaAvailable ? static_cast<double>(torch::cuda::device_count()) : 0));
    out.Set("threads", Napi::Number::New(env, TorchThreads()));
    out.Set("interopThreads", Napi::Number::New(env, at::get_num_interop_threads()));
    // This (JS) thread's own intra-op count: 1 by design (bridge/torch_thread.h, KeepThisThreadSerial).
    out.Set("jsThreadTorchThreads", Napi::Number::New(env, at::get_num_threads()));
    out.Set("cxx11Abi", Napi::Boolean::New(env, _GLIBCXX_USE_CXX11_ABI != 0));
    out.Set("libtorchPath", loadedLibtorchPath());
    out.Set("mkldnn", Napi::Boolean::New(env, at::hasMKLDNN()));
    out.Set("parallelInfo", at::get_parallel_info());
    return out;
  });
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsNumber()) fail(codes::kBadArgument, "threads must be a positive integer");
    int n = info[0].As<Napi::Number>().Int32Value();
    if (n < 1) fail(codes::kBadArgument, "threads must be a positive integer");
    SetTorchThreads(n);
    return Napi::Number::New(env, TorchThreads());
  });
}

// Square matmuls for a fixed wall-time budget; reports achieved GFLOP/s (2·n³ per product).
class MatmulBenchJob : public AsyncJob {
 public:
  MatmulBenchJob(Napi::Env env, Napi::Object options) : AsyncJob(env, "lethe.benchMatmul", options) {
    size_ = options.Has("size") ? options.Get("size").ToNumber().Int64Value() : 1024;
    seconds_ = options.Has("seconds") ? options.Get("seconds").ToNumber().DoubleValue() : 2.0;
    dtype_ = dtypeFromName(options.Has("dtype") ? options.Get("dtype").ToString().Utf8Value() : "float32");
    device_ = ParseDevice(options.Has("device") ? options.Get("device").ToString().Utf8Value() : "cpu");
    if (size_ < 1 || size_ > 16384) fail(codes::kBadArgument, "size must be in 1..16384");
    if (!(seconds_ > 0) || seconds_ > 600) fail(codes::kBadArgument, "seconds must be in (0, 600]");
    if (dtype_ != torch::kFloat32 && dtype_ != torch::kBFloat16 && dtype_ != torch::kFloat16)
      fail(codes::kBadArgument, "dtype must be float32, bfloat16 or float16");
    if (dtype_ == torch::kFloat16 && device_.is_cpu()) fail(codes::kBadArgument, "float16 matmul is not benchmarked on CPU (use bfloat16)");
  }

 protected:
  void Run() override {
    torch::NoGradGuard no_grad;
    auto opts = torch::TensorOptions().dtype(dtype_).device(device_);
    torch::Tensor a = torch::randn({size_, size_}, opts), b = torch::randn({size_, size_}, opts);
    auto sync = [&] {
      if (device_.is_cuda()) torch::cuda::synchronize(device_.index() < 0 ? 0 : device_.index());
    };
    torch::mm(a, b);  // warm-up: first call pays for allocation and kernel selection
    sync();
    using clock = std::chrono::steady_clock;
    auto start = clock::now();
    double elapsed = 0;
    while (elapsed < seconds_) {
      ThrowIfCancelled();
      torch::mm(a, b);
      sync();
      ++iterations_;
      elapsed = std::chrono::duration<double>(clock::now() - start).count();
      gflops_ = 2.0 * size_ * size_ * size_ * iterations_ / elapsed / 1e9;
      Report({"matmul", iterations_, 0, {{"elapsed", elapsed}, {"gflops", gflops_}}});
    }
    seconds_ = elapsed;
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("dtype", dtypeName(dtype_));
    out.Set("device", device_.str());
    out.Set("size", Napi::Number::New(env, static_cast<double>(size_)));
    out.Set("iterations", Napi::Number::New(env, static_cast<double>(iterations_)));
    out.Set("seconds", Napi::Number::New(env, seconds_));
    out.Set("gflops", Napi::Number::New(env, gflops_));
    out.Set("threads", Napi::Number::New(env, TorchThreads()));
    return out;
  }

 private:
  int64_t size_;
  double seconds_;
  torch::ScalarType dtype_;
  torch::Device device_{torch::kCPU};
  int64_t iterations_ = 0;
  double gflops_ = 0;
};

}  // namespace

void RegisterInfo(Napi::Env env, Napi::Object exports) {
  exports.Set("nativeInfo", Napi::Function::New<NativeInfo>(env, "nativeInfo"));
  exports.Set("setThreads", Napi::Function::New<SetThreads>(env, "setThreads"));
  exports.Set("benchMatmul", Napi::Function::New<StartJob<MatmulBenchJob>>(env, "benchMatmul"));
}

}  // namespace lethe
