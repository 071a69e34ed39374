// compare_models: the efficiency comparisons people make, measured on their own hardware.
//
//   build/bin/compare_models [--train-steps N] [--infer-steps N] [--batch B] [--out-dir DIR]
//
// 1. Trains, on the same synthetic 32x32 images, a VGG-style CNN (3x3 convolutions) and a
//    MobileNet-style CNN (depthwise-separable convolutions) of similar depth.
// 2. Runs inference with the trained VGG model (dense fp32), magnitude-pruned copies (50% and
//    90% of each weight tensor set to zero) and a bfloat16 copy.
// Each variant writes its own report (DIR/compare_<variant>.json, default DIR=runs) with the
// model footprint (trainmeter::torch::describe), tensor memory and op accounting (FLOPs per
// step, every 5th step after warm-up). The example ends by running `trainmeter compare` (the CLI
// next to this executable) on the pairs, after a table of the figures compare does not show.
// TRAINMETER_* variables override the configuration (e.g. TRAINMETER_OPS=0).
#include <torch/torch.h>

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <trainmeter/torch.hpp>
#include <trainmeter/torch_ops.hpp>
#include <trainmeter/trainmeter.hpp>

namespace {

struct Options {
  long train_steps = 12;
  long infer_steps = 24;
  long batch = 16;
  std::string out_dir = "runs";
};

const char* kUsage =
    "usage: compare_models [options]\n"
    "  --train-steps N  training steps per architecture (default 12)\n"
    "  --infer-steps N  inference steps per variant (default 24)\n"
    "  --batch B        batch size (default 16)\n"
    "  --out-dir DIR    where the reports go (default runs)\n"
    "  --help           show this help\n";

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "compare_models: %s\n%s", message.c_str(), kUsage);
  std::exit(2);
}

long parse_long(const std::string& flag, const char* value, long min, long max) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(value, &end, 10);
  if (*value == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
    usage_error(flag + " expects an integer from " + std::to_string(min) + " to " +
                std::to_string(max) + ", got '" + value + "'");
  return v;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (i + 1 >= argc)
      usage_error(a.rfind("--", 0) == 0 ? a + " needs a value" : "unexpected argument '" + a + "'");
    const char* v = argv[++i];
    if (a == "--train-steps")
      o.train_steps = parse_long(a, v, 1, 1000000);
    else if (a == "--infer-steps")
      o.infer_steps = parse_long(a, v, 1, 1000000);
    else if (a == "--batch")
      o.batch = parse_long(a, v, 1, 4096);
    else if (a == "--out-dir")
      o.out_dir = v;
    else
      usage_error("unknown option '" + a + "'");
  }
  return o;
}

// VGG-style: pairs of 3x3 convolutions, max-pooling between stages, a dense classifier.
struct VggImpl : torch::nn::Module {
  VggImpl() {
    const int channels[] = {32, 64, 128};
    int in = 3;
    for (int c : channels) {
      features->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, c, 3).padding(1)));
      features->push_back(torch::nn::ReLU());
      features->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(c, c, 3).padding(1)));
      features->push_back(torch::nn::ReLU());
      features->push_back(torch::nn::MaxPool2d(2));
      in = c;
    }
    register_module("features", features);
    register_module("fc1", fc1);
    register_module("fc2", fc2);
  }
  torch::Tensor forward(torch::Tensor x) {
    x = features->forward(x).flatten(1);
    return fc2->forward(torch::relu(fc1->forward(x)));
  }
  torch::nn::Sequential features;
  torch::nn::Linear fc1{128 * 4 * 4, 256};
  torch::nn::Linear fc2{256, 10};
};
TORCH_MODULE(Vgg);

// MobileNet-style: one full 3x3 convolution, then depthwise 3x3 + pointwise 1x1 blocks (the
// depthwise-separable factorisation), global average pooling, one linear layer. Seven
// convolution stages against VGG's six plus its two dense layers: similar depth.
struct MobileNetImpl : torch::nn::Module {
  MobileNetImpl() {
    features->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 32, 3).padding(1)));
    features->push_back(torch::nn::ReLU());
    struct Block {
      int in, out, stride;
    };
    const Block blocks[] = {{32, 64, 1},   {64, 128, 2},  {128, 128, 1},
                            {128, 256, 2}, {256, 256, 1}, {256, 256, 2}};
    for (const Block& b : blocks) {
      features->push_back(torch::nn::Conv2d(
          torch::nn::Conv2dOptions(b.in, b.in, 3).stride(b.stride).padding(1).groups(b.in)));
      features->push_back(torch::nn::ReLU());
      features->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(b.in, b.out, 1)));
      features->push_back(torch::nn::ReLU());
    }
    register_module("features", features);
    register_module("fc", fc);
  }
  torch::Tensor forward(torch::Tensor x) {
    x = features->forward(x).mean({2, 3});
    return fc->forward(x);
  }
  torch::nn::Sequential features;
  torch::nn::Linear fc{256, 10};
};
TORCH_MODULE(MobileNet);

struct Batch {
  torch::Tensor images, labels;
};

std::unique_ptr<trainmeter::Session> open_session(const Options& opt, const std::string& variant,
                                                  const std::string& what) {
  trainmeter::Config cfg;
  cfg.run_name = "compare_" + variant;
  cfg.output = opt.out_dir + "/compare_" + variant + ".json";
  cfg.warmup_steps = 2;
  cfg.ops = true;
  cfg.ops_every = 5;
  cfg.progress = "off";
  cfg.tags = {{"example", "compare_models"}, {"variant", variant}, {"what", what}};
  return std::make_unique<trainmeter::Session>(trainmeter::Config::from_env(cfg));
}

template <class Model>
std::string train(const Options& opt, Model& model, const std::string& variant,
                  const std::vector<Batch>& pool) {
  auto session = open_session(opt, variant, "training");
  session->set_total_steps(static_cast<std::uint64_t>(opt.train_steps));
  trainmeter::torch::describe(*session, *model, variant);
  auto instrumentation = trainmeter::torch::instrument(*session);  // memory, ops, GPU time
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  model->train();
  double loss_value = 0;
  for (long s = 0; s < opt.train_steps; ++s) {
    auto step = session->step(static_cast<std::uint64_t>(opt.batch));
    const Batch& b = pool[static_cast<std::size_t>(s) % pool.size()];
    optimizer.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(model->forward(b.images), b.labels);
    loss.backward();
    optimizer.step();
    loss_value = loss.template item<double>();
    step.set_loss(loss_value);
  }
  instrumentation.reset();
  const trainmeter::Report report = session->finish();
  std::printf("%-18s trained %ld steps, final loss %.4f -> %s\n", variant.c_str(), opt.train_steps,
              loss_value, report.written ? report.path.c_str() : "(report not written)");
  return report.path;
}

std::string infer(const Options& opt, Vgg& model, const std::string& variant,
                  const std::vector<Batch>& pool, torch::ScalarType dtype) {
  auto session = open_session(opt, variant, "inference");
  session->set_total_steps(static_cast<std::uint64_t>(opt.infer_steps));
  trainmeter::torch::describe(*session, *model, variant);
  // Inputs converted outside the timed steps, as a deployed model would receive them.
  std::vector<torch::Tensor> inputs;
  for (const Batch& b : pool) inputs.push_back(b.images.to(dtype));
  auto instrumentation = trainmeter::torch::instrument(*session);  // memory, ops, GPU time
  const trainmeter::Phase phase = session->phase("infer");
  model->eval();
  torch::NoGradGuard no_grad;
  for (long s = 0; s < opt.infer_steps; ++s) {
    auto step = session->step(static_cast<std::uint64_t>(opt.batch), phase);
    auto logits = model->forward(inputs[static_cast<std::size_t>(s) % inputs.size()]);
    (void)logits;
  }
  instrumentation.reset();
  const trainmeter::Report report = session->finish();
  std::printf("%-18s %ld inference steps -> %s\n", variant.c_str(), opt.infer_steps,
              report.written ? report.path.c_str() : "(report not written)");
  return report.path;
}

// Magnitude pruning, unstructured: in each weight tensor (not biases) the `fraction` of entries
// with the smallest absolute values become exactly zero. The tensor stays dense.
void prune(Vgg& model, double fraction) {
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    torch::Tensor w = p.value();
    if (w.dim() < 2) continue;
    const auto k = static_cast<std::int64_t>(fraction * static_cast<double>(w.numel()));
    if (k <= 0) continue;
    const auto smallest = std::get<1>(w.abs().flatten().topk(k, 0, /*largest=*/false));
    w.view({-1}).index_fill_(0, smallest, 0.0);
  }
}

Vgg copy_of(Vgg& src) {
  Vgg dst;
  torch::NoGradGuard no_grad;
  auto to = dst->named_parameters();
  for (auto& p : src->named_parameters()) to[p.key()].copy_(p.value());
  return dst;
}

std::string self_dir() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  std::string path(buf, static_cast<std::size_t>(n));
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::string fmt_g(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g", v);
  return buf;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The figures `trainmeter compare` does not list: parameters and FLOPs per step (from the
// report's model and ops sections), as B/A ratios.
void print_extra_ratios(const std::string& a_path, const std::string& b_path) {
  auto load = [](const std::string& p) {
    std::ifstream in(p);
    return nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  };
  const nlohmann::json a = load(a_path), b = load(b_path);
  auto num = [](const nlohmann::json& j, const char* ptr) -> double {
    const nlohmann::json::json_pointer p(ptr);
    return j.contains(p) && j.at(p).is_number() ? j.at(p).get<double>() : -1.0;
  };
  struct Row {
    const char* name;
    const char* ptr;
  };
  const Row rows[] = {{"parameters", "/model/parameters"},
                      {"zero_fraction", "/model/zero_fraction"},
                      {"flops_per_step", "/ops/flops_per_step"},
                      {"achieved_flops_per_s", "/ops/achieved_flops_per_s"}};
  for (const Row& r : rows) {
    const double va = num(a, r.ptr), vb = num(b, r.ptr);
    // Absent figures and ratios against zero print as n/a, never as a number.
    const std::string sa = va < 0 ? "n/a" : fmt_g(va), sb = vb < 0 ? "n/a" : fmt_g(vb);
    const std::string ratio = va > 0 && vb >= 0 ? fmt_g(vb / va) : "n/a";
    std::printf("  %-22s %14s %14s %10s\n", r.name, sa.c_str(), sb.c_str(), ratio.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  torch::manual_seed(0);
  // Synthetic 10-class images: a fixed pool of batches shared by every variant.
  std::vector<Batch> pool;
  for (int i = 0; i < 4; ++i)
    pool.push_back({torch::randn({opt.batch, 3, 32, 32}), torch::randint(0, 10, {opt.batch})});

  std::vector<std::pair<std::string, std::string>> pairs;
  try {
    Vgg vgg;
    MobileNet mobilenet;
    const std::string vgg_train = train(opt, vgg, "vgg_train", pool);
    const std::string mobilenet_train = train(opt, mobilenet, "mobilenet_train", pool);
    pairs.emplace_back(vgg_train, mobilenet_train);

    const std::string dense = infer(opt, vgg, "dense_infer", pool, torch::kFloat32);
    for (const auto& [name, fraction] : {std::pair<const char*, double>{"pruned50_infer", 0.5},
                                         std::pair<const char*, double>{"pruned90_infer", 0.9}}) {
      Vgg pruned = copy_of(vgg);
      prune(pruned, fraction);
      pairs.emplace_back(dense, infer(opt, pruned, name, pool, torch::kFloat32));
    }
    Vgg bf16 = copy_of(vgg);
    bf16->to(torch::kBFloat16);
    pairs.emplace_back(dense, infer(opt, bf16, "bf16_infer", pool, torch::kBFloat16));
  } catch (const trainmeter::Error& e) {
    std::fprintf(stderr, "compare_models: %s\n", e.what());
    return 2;
  }

  const std::string cli = self_dir() + "/trainmeter";
  const bool have_cli = ::access(cli.c_str(), X_OK) == 0;
  int status = 0;
  for (const auto& [a, b] : pairs) {
    std::printf("\n=== %s  vs  %s ===\n", a.c_str(), b.c_str());
    std::printf("  %-22s %14s %14s %10s\n", "", "A", "B", "B/A");
    print_extra_ratios(a, b);
    if (have_cli) {
      std::fflush(stdout);
      const std::string cmd =
          shell_quote(cli) + " compare " + shell_quote(a) + " " + shell_quote(b);
      if (std::system(cmd.c_str()) != 0) status = 1;
    } else {
      std::printf("  (%s not found: build the trainmeter CLI for the full comparison)\n",
                  cli.c_str());
    }
  }
  return status;
}
