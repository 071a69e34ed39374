// trainmeter::torch::describe against hand-computed footprints.
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <catch2/catch.hpp>

#include "support/test_support.hpp"
#include "trainmeter/session.hpp"
#include "trainmeter/torch.hpp"

using trainmeter::torch::describe;
using trainmeter::torch::ModelFootprint;

TEST_CASE("describe: Linear(10, 5)", "[torch][describe]") {
  torch::nn::Linear lin(10, 5);
  const ModelFootprint f = describe(*lin);
  CHECK(f.parameters == 55);
  CHECK(f.parameter_tensors == 2);
  CHECK(f.trainable_parameters == 55);
  CHECK(f.frozen_parameters == 0);
  CHECK(f.parameter_bytes == 220);
  CHECK(f.buffers == 0);
  CHECK(f.total_bytes == 220);
  CHECK(f.bytes_by_dtype == std::map<std::string, std::int64_t>{{"float32", 220}});
  CHECK(f.sgd_momentum_state_bytes == 220);
  CHECK(f.adam_state_bytes == 440);
  CHECK(f.zero_parameters == 0);
  CHECK(f.zero_fraction == 0.0);
}

TEST_CASE("describe: Conv2d(3, 8, 3) and BatchNorm2d(4) buffers", "[torch][describe]") {
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(3, 8, 3));
  const ModelFootprint c = describe(*conv);
  CHECK(c.parameters == 8 * 3 * 3 * 3 + 8);
  CHECK(c.parameter_bytes == 224 * 4);

  torch::nn::BatchNorm2d bn(4);
  const ModelFootprint b = describe(*bn);
  CHECK(b.parameters == 8);       // weight, bias
  CHECK(b.buffers == 4 + 4 + 1);  // running_mean, running_var, num_batches_tracked
  CHECK(b.buffer_tensors == 3);
  CHECK(b.buffer_bytes == 16 + 16 + 8);
  CHECK(b.bytes_by_dtype == std::map<std::string, std::int64_t>{{"float32", 64}, {"int64", 8}});
  CHECK(b.total_bytes == 32 + 40);
  CHECK(b.adam_state_bytes == 64);  // buffers hold no optimizer state
}

TEST_CASE("describe: Sequential with a frozen part", "[torch][describe]") {
  torch::nn::Sequential seq(torch::nn::Linear(4, 3), torch::nn::Linear(3, 2));
  for (auto& p : seq[0]->parameters()) p.set_requires_grad(false);
  const ModelFootprint f = describe(*seq);
  CHECK(f.parameters == 15 + 8);
  CHECK(f.frozen_parameters == 15);
  CHECK(f.trainable_parameters == 8);
  CHECK(f.trainable_parameter_bytes == 32);
  CHECK(f.sgd_momentum_state_bytes == 32);
  CHECK(f.adam_state_bytes == 64);
  CHECK(f.parameter_bytes == 92);
}

TEST_CASE("describe: half-precision copy", "[torch][describe]") {
  torch::nn::Linear lin(10, 5);
  lin->to(torch::kHalf);
  const ModelFootprint f = describe(*lin);
  CHECK(f.parameters == 55);
  CHECK(f.parameter_bytes == 110);
  CHECK(f.bytes_by_dtype == std::map<std::string, std::int64_t>{{"float16", 110}});
  CHECK(f.adam_state_bytes == 220);
}

TEST_CASE("describe: pruned copy has exact sparsity", "[torch][describe]") {
  torch::nn::Linear lin(10, 5);
  {
    torch::NoGradGuard g;
    lin->weight.narrow(1, 0, 4).zero_();  // 5 x 4 = 20 zeros
    lin->bias.fill_(0.5);
    lin->weight.narrow(1, 4, 6).fill_(1.0);
  }
  const ModelFootprint f = describe(*lin);
  CHECK(f.zero_parameters == 20);
  CHECK(f.zero_fraction == Approx(20.0 / 55.0).epsilon(1e-12));
}

namespace {
struct Odd : torch::nn::Module {
  Odd() {
    register_parameter("undefined_weight", torch::Tensor(), /*requires_grad=*/false);
    register_buffer("undefined_buffer", torch::Tensor());
    // A transposed (non-contiguous) parameter: logical size 4 x 6 floats.
    t = register_parameter("transposed", torch::zeros({6, 4}).t());
    inner = register_module("inner", torch::nn::Linear(2, 2));
    // Weight tying: the same tensor registered again is counted once.
    tied = register_parameter("tied", inner->weight);
  }
  torch::Tensor t, tied;
  torch::nn::Linear inner{nullptr};
};
}  // namespace

TEST_CASE("describe: undefined tensors, non-contiguous and tied parameters", "[torch][describe]") {
  Odd odd;
  REQUIRE_FALSE(odd.t.is_contiguous());
  const ModelFootprint f = describe(odd);
  // libtorch's named_parameters()/named_buffers() already omit undefined entries: they are
  // skipped without being seen, and describe() does not throw.
  CHECK(f.undefined_tensors == 0);
  CHECK(f.shared_tensors == 1);
  CHECK(f.parameters == 24 + 6);
  CHECK(f.parameter_bytes == 120);
  CHECK(f.zero_parameters == 24);
}

TEST_CASE("describe(session, module) fills report.model", "[torch][describe]") {
  trainmeter::test::TempDir dir;
  trainmeter::Config cfg;
  cfg.output = dir / "report.json";
  cfg.progress = "off";
  cfg.energy_sources = {"estimate"};
  trainmeter::Session session(cfg);
  torch::nn::Sequential seq(torch::nn::Linear(4, 3), torch::nn::Linear(3, 2));
  trainmeter::torch::describe(session, *seq, "tiny");
  const auto r = session.finish();
  REQUIRE(r.written);
  CHECK(trainmeter::test::schema_errors(dir / "report.json") == "");
  const auto j = nlohmann::json::parse(r.json);
  const auto& m = j["model"];
  CHECK(m["name"] == "tiny");
  CHECK(m["parameters"] == 23);
  CHECK(m["total_bytes"] == 92);
  CHECK(m["bytes_by_dtype"]["float32"] == 92);
  CHECK(m["optimizer_state_bytes_estimate"]["adam"] == 184);
  CHECK(m["zero_fraction"] == 0.0);
  // describe() alone does not claim tensor tracking.
  CHECK(j["memory"]["peak_tensor_bytes"].is_null());
}
