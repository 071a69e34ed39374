// Op accounting: FLOP formulas against hand-computed values, the ops table of known models run
// through a real Session, step selection, and stepping aside for libtorch's own profiler.
#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "support/test_support.hpp"
#include "torch/ops.hpp"
#include "trainmeter/session.hpp"
#include "trainmeter/torch_ops.hpp"

using trainmeter::detail::flop_kind;
using trainmeter::detail::FlopKind;
using trainmeter::detail::op_flops;

namespace {

double flops_of(const char* op, std::vector<c10::IValue> inputs) {
  return op_flops(flop_kind(op), c10::ArrayRef<const c10::IValue>(inputs.data(), inputs.size()));
}

c10::IValue ints(std::vector<std::int64_t> v) {
  return c10::IValue(c10::List<std::int64_t>(v));
}

trainmeter::Config ops_config(const trainmeter::test::TempDir& dir, std::uint64_t every,
                              std::uint64_t warmup) {
  trainmeter::Config c;
  c.run_name = "ops_test";
  c.output = dir / "report.json";
  c.ops = true;
  c.ops_every = every;
  c.warmup_steps = warmup;
  c.energy_sources = {"estimate"};
  c.progress = "off";
  c.track_tensor_memory = false;
  return c;
}

const nlohmann::json* find_op(const nlohmann::json& ops, const std::string& name) {
  for (const auto& row : ops["top"])
    if (row["name"] == name) return &row;
  return nullptr;
}

}  // namespace

TEST_CASE("ops: formula lookup by op name", "[torch][ops]") {
  CHECK(flop_kind("aten::mm") == FlopKind::kMm);
  CHECK(flop_kind("aten::addmm") == FlopKind::kAddmm);
  CHECK(flop_kind("aten::conv2d") == FlopKind::kConv);
  CHECK(flop_kind("aten::_convolution") == FlopKind::kConvolution);
  CHECK(flop_kind("aten::convolution_backward") == FlopKind::kConvolutionBackward);
  CHECK(flop_kind("aten::add") == FlopKind::kNone);
  CHECK(flop_kind("mm") == FlopKind::kNone);
  CHECK(flop_kind("aten::mm_extra") == FlopKind::kNone);
}

TEST_CASE("ops: matmul-like FLOPs from shapes", "[torch][ops]") {
  // addmm(bias, [32,64], [64,64]) = 2*32*64*64
  CHECK(flops_of("aten::addmm",
                 {torch::zeros({64}), torch::zeros({32, 64}), torch::zeros({64, 64})}) == 262144.0);
  CHECK(flops_of("aten::mm", {torch::zeros({5, 7}), torch::zeros({7, 3})}) == 2.0 * 5 * 7 * 3);
  CHECK(flops_of("aten::bmm", {torch::zeros({4, 5, 7}), torch::zeros({4, 7, 3})}) ==
        2.0 * 4 * 5 * 7 * 3);
  // matmul broadcasting [3,1,4,5] x [2,5,6]: batch 3x2, 2*6*4*5*6
  CHECK(flops_of("aten::matmul", {torch::zeros({3, 1, 4, 5}), torch::zeros({2, 5, 6})}) == 1440.0);
  CHECK(flops_of("aten::matmul", {torch::zeros({5}), torch::zeros({5})}) == 10.0);
  CHECK(flops_of("aten::matmul", {torch::zeros({4, 5}), torch::zeros({5})}) == 40.0);
  // linear [7,3,10] x w[4,10]: 2*7*3*10*4
  CHECK(flops_of("aten::linear",
                 {torch::zeros({7, 3, 10}), torch::zeros({4, 10}), c10::IValue()}) == 1680.0);
  // Wrong shapes: unknown (-1), not 0.
  CHECK(flops_of("aten::mm", {torch::zeros({5}), torch::zeros({5, 3})}) == -1.0);
  CHECK(flops_of("aten::mm", {c10::IValue(3), torch::zeros({5, 3})}) == -1.0);
  CHECK(flops_of("aten::add", {torch::zeros({5, 3}), torch::zeros({5, 3})}) == -1.0);
}

TEST_CASE("ops: convolution FLOPs with stride, padding, dilation and groups", "[torch][ops]") {
  // conv2d: N=2, C_in=4, 17x19, C_out=6, groups=2, kernel 3x5, stride (2,3), padding (1,2).
  // Output: H = (17+2-2-1)/2+1 = 9, W = (19+4-4-1)/3+1 = 7.
  // Each of the 2*6*9*7 = 756 outputs takes (4/2)*3*5 = 30 multiply-adds: 2*756*30 = 45360.
  const auto x = torch::randn({2, 4, 17, 19});
  const auto w = torch::randn({6, 2, 3, 5});
  const auto y = torch::conv2d(x, w, {}, {2, 3}, {1, 2}, {1, 1}, 2);
  REQUIRE(y.sizes() == torch::IntArrayRef({2, 6, 9, 7}));  // our hand-computed output shape
  CHECK(flops_of("aten::conv2d", {x, w, c10::IValue(), ints({2, 3}), ints({1, 2}), ints({1, 1}),
                                  c10::IValue(2)}) == 45360.0);
  // The same through aten::convolution's argument list (transposed=false).
  CHECK(
      flops_of("aten::convolution", {x, w, c10::IValue(), ints({2, 3}), ints({1, 2}), ints({1, 1}),
                                     c10::IValue(false), ints({0, 0}), c10::IValue(2)}) == 45360.0);
  // Dilation 2 in H: H = (17+2-2*2-1)/2+1 = 8; 2*(2*6*8*7)*30 = 40320.
  CHECK(torch::conv2d(x, w, {}, {2, 3}, {1, 2}, {2, 1}, 2).size(2) == 8);
  CHECK(flops_of("aten::conv2d", {x, w, c10::IValue(), ints({2, 3}), ints({1, 2}), ints({2, 1}),
                                  c10::IValue(2)}) == 40320.0);
  // padding="same" (stride 1): output 17x19; 2*(2*6*17*19)*30.
  CHECK(
      flops_of("aten::conv2d", {x, w, c10::IValue(), ints({1, 1}), c10::IValue(std::string("same")),
                                ints({1, 1}), c10::IValue(2)}) == 2.0 * (2 * 6 * 17 * 19) * 30);
  // conv1d, unbatched input [3, 10], weight [5, 3, 4]: L = 7; 2*(5*7)*(3*4) = 840.
  CHECK(flops_of("aten::conv1d", {torch::zeros({3, 10}), torch::zeros({5, 3, 4}), c10::IValue(),
                                  ints({1}), ints({0}), ints({1}), c10::IValue(1)}) == 840.0);
  // Transposed: input [1,4,5,5], weight [4,3,3,3]: each of the 4*25 input elements scatters into
  // 3*9 outputs: 2*100*27 = 5400.
  CHECK(flops_of("aten::convolution", {torch::zeros({1, 4, 5, 5}), torch::zeros({4, 3, 3, 3}),
                                       c10::IValue(), ints({1, 1}), ints({0, 0}), ints({1, 1}),
                                       c10::IValue(true), ints({0, 0}), c10::IValue(1)}) == 5400.0);
  // convolution_backward for the grouped conv above: forward figure per selected gradient.
  auto bw = [&](bool gi, bool gw) {
    return flops_of("aten::convolution_backward",
                    {torch::zeros({2, 6, 9, 7}), x, w, c10::IValue(), ints({2, 3}), ints({1, 2}),
                     ints({1, 1}), c10::IValue(false), ints({0, 0}), c10::IValue(2),
                     c10::IValue(c10::List<bool>({gi, gw, true}))});
  };
  CHECK(bw(true, true) == 2 * 45360.0);
  CHECK(bw(false, true) == 45360.0);
  CHECK(bw(false, false) == 0.0);
}

TEST_CASE("ops: a session accounts addmm and conv2d with exact FLOPs", "[torch][ops]") {
  trainmeter::test::TempDir dir;
  const auto a = torch::randn({32, 64}), b = torch::randn({64, 64}), bias = torch::randn({64});
  const auto x = torch::randn({2, 4, 17, 19}), w = torch::randn({6, 2, 3, 5});
  {
    trainmeter::Session session(ops_config(dir, 1, 0));
    auto ops = trainmeter::torch::account_ops(session);
    REQUIRE(ops.active());
    for (int i = 0; i < 3; ++i) {
      auto step = session.step(32);
      torch::NoGradGuard no_grad;
      auto y = torch::addmm(bias, a, b);
      auto z = torch::conv2d(x, w, {}, {2, 3}, {1, 2}, {1, 1}, 2);
    }
    session.finish();
  }
  const auto report = trainmeter::test::read_json(dir / "report.json");
  CHECK(trainmeter::test::schema_errors(dir / "report.json") == "");
  const auto& ops = report["ops"];
  REQUIRE(ops.is_object());
  CHECK(ops["enabled"] == true);
  CHECK(ops["steps_accounted"] == 3);
  CHECK(ops["steps_seen"] == 3);
  const auto* addmm = find_op(ops, "aten::addmm");
  REQUIRE(addmm != nullptr);
  CHECK((*addmm)["calls"] == 3);
  CHECK((*addmm)["flops"].get<double>() == 3 * 262144.0);
  const auto* conv = find_op(ops, "aten::conv2d");
  REQUIRE(conv != nullptr);
  CHECK((*conv)["calls"] == 3);
  CHECK((*conv)["flops"].get<double>() == 3 * 45360.0);
  // conv2d calls aten::convolution inside: that row shows the same work, the step counts it once.
  const auto* convolution = find_op(ops, "aten::convolution");
  REQUIRE(convolution != nullptr);
  CHECK((*convolution)["flops"].get<double>() == 3 * 45360.0);
  CHECK(ops["flops_per_step"].get<double>() == 262144.0 + 45360.0);
  // Self times add up to no more than total times; an op with no formula has null FLOPs.
  for (const auto& row : ops["top"]) {
    CHECK(row["self_cpu_ns"].get<std::int64_t>() <= row["total_cpu_ns"].get<std::int64_t>());
    if (row["name"] == "aten::empty") CHECK(row["flops"].is_null());
  }
  CHECK((*conv)["total_cpu_ns"].get<std::int64_t>() >=
        (*convolution)["total_cpu_ns"].get<std::int64_t>());
  const double coverage = ops["coverage"].get<double>();
  CHECK(coverage > 0.0);
  CHECK(coverage <= 1.0);
  CHECK(ops["covered_ns"].get<std::int64_t>() <= ops["accounted_wall_ns"].get<std::int64_t>());
  // accounted_wall_ns is the sum of the accounted steps' own wall times.
  std::int64_t wall = 0;
  int annotated = 0;
  for (const auto& s : report["steps"]) {
    wall += s["wall_ns"].get<std::int64_t>();
    if (s.value("ops_accounted", false)) {
      ++annotated;
      CHECK(s["ops_flops"].get<double>() == 262144.0 + 45360.0);
    }
  }
  CHECK(annotated == 3);
  CHECK(ops["accounted_wall_ns"].get<std::int64_t>() == wall);
  CHECK(ops["achieved_flops_per_s"].get<double>() ==
        Approx(3 * (262144.0 + 45360.0) / (1e-9 * double(wall))).epsilon(1e-12));
}

TEST_CASE("ops: the ops table of a known MLP training step", "[torch][ops]") {
  trainmeter::test::TempDir dir;
  torch::manual_seed(0);
  torch::nn::Sequential model(torch::nn::Linear(8, 16), torch::nn::ReLU(),
                              torch::nn::Linear(16, 4));
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.1));
  const auto x = torch::randn({32, 8}), target = torch::randn({32, 4});
  {
    // warm-up 2, every 3rd: steps 2, 5, 8 of 10 are accounted.
    trainmeter::Session session(ops_config(dir, 3, 2));
    auto ops = trainmeter::torch::account_ops(session);
    REQUIRE(ops.active());
    for (int i = 0; i < 10; ++i) {
      auto step = session.step(32);
      opt.zero_grad();
      auto loss = torch::mse_loss(model->forward(x), target);
      loss.backward();
      opt.step();
    }
    session.finish();
  }
  const auto report = trainmeter::test::read_json(dir / "report.json");
  CHECK(trainmeter::test::schema_errors(dir / "report.json") == "");
  const auto& ops = report["ops"];
  CHECK(ops["steps_seen"] == 10);
  CHECK(ops["steps_accounted"] == 3);
  std::vector<std::int64_t> accounted;
  for (const auto& s : report["steps"])
    if (s.value("ops_accounted", false)) accounted.push_back(s["index"].get<std::int64_t>());
  CHECK(accounted == std::vector<std::int64_t>{2, 5, 8});
  // The C++ frontend's Linear calls addmm directly (no aten::linear) for 2-D inputs.
  for (const char* name : {"aten::addmm", "aten::t", "aten::relu", "aten::mse_loss", "aten::mm",
                           "aten::threshold_backward", "aten::mse_loss_backward"}) {
    INFO(name);
    CHECK(find_op(ops, name) != nullptr);
  }
  REQUIRE(find_op(ops, "aten::addmm") != nullptr);
  REQUIRE(find_op(ops, "aten::relu") != nullptr);
  REQUIRE(find_op(ops, "aten::mm") != nullptr);
  CHECK((*find_op(ops, "aten::addmm"))["calls_per_step"].get<double>() == 2.0);
  CHECK((*find_op(ops, "aten::relu"))["calls_per_step"].get<double>() == 1.0);
  // Forward: 2*32*8*16 + 2*32*16*4. Backward: layer 2 grad input [32,4]x[4,16] and grad weight
  // [4,32]x[32,16]; layer 1 grad weight [16,32]x[32,8] only (x needs no gradient).
  const double forward = 2.0 * 32 * 8 * 16 + 2.0 * 32 * 16 * 4;
  const double backward = 2.0 * 32 * 4 * 16 + 2.0 * 4 * 32 * 16 + 2.0 * 16 * 32 * 8;
  CHECK(ops["flops_per_step"].get<double>() == forward + backward);
  CHECK((*find_op(ops, "aten::mm"))["flops"].get<double>() == 3 * backward);
}

TEST_CASE("ops: convolution backward through autograd", "[torch][ops]") {
  trainmeter::test::TempDir dir;
  auto x = torch::randn({2, 4, 17, 19});
  auto w = torch::randn({6, 2, 3, 5}, torch::requires_grad());
  {
    trainmeter::Session session(ops_config(dir, 1, 0));
    auto ops = trainmeter::torch::account_ops(session);
    auto step = session.step();
    torch::conv2d(x, w, {}, {2, 3}, {1, 2}, {1, 1}, 2).sum().backward();
  }
  const auto report = trainmeter::test::read_json(dir / "report.json");
  const auto* bw = find_op(report["ops"], "aten::convolution_backward");
  REQUIRE(bw != nullptr);
  CHECK((*bw)["flops"].get<double>() == 45360.0);  // grad_weight only: x needs no gradient
  CHECK(report["ops"]["flops_per_step"].get<double>() == 2 * 45360.0);
}

TEST_CASE("ops: off by default, and accounting twice is refused", "[torch][ops]") {
  trainmeter::test::TempDir dir;
  {
    auto cfg = ops_config(dir, 1, 0);
    cfg.ops = false;
    trainmeter::Session session(cfg);
    auto ops = trainmeter::torch::account_ops(session);
    CHECK_FALSE(ops.active());
    auto step = session.step();
    torch::mm(torch::ones({2, 2}), torch::ones({2, 2}));
  }
  auto report = trainmeter::test::read_json(dir / "report.json");
  CHECK(report["ops"].is_null());
  CHECK(trainmeter::test::schema_errors(dir / "report.json") == "");

  trainmeter::test::TempDir dir2;
  {
    trainmeter::Session session(ops_config(dir2, 1, 0));
    auto first = trainmeter::torch::account_ops(session);
    auto second = trainmeter::torch::account_ops(session);
    CHECK(first.active());
    CHECK_FALSE(second.active());
    auto step = session.step();
    torch::mm(torch::ones({2, 2}), torch::ones({2, 2}));
  }
  report = trainmeter::test::read_json(dir2 / "report.json");
  CHECK(report["ops"]["steps_accounted"] == 1);
  bool refused = false;
  for (const auto& d : report["diagnostics"])
    if (d["source"] == "ops" && d["status"] == "skipped") refused = true;
  CHECK(refused);
}

TEST_CASE("ops: steps accounted after the guard is reset are none", "[torch][ops]") {
  trainmeter::test::TempDir dir;
  {
    trainmeter::Session session(ops_config(dir, 1, 0));
    auto ops = trainmeter::torch::account_ops(session);
    {
      auto step = session.step();
      torch::mm(torch::ones({2, 3}), torch::ones({3, 4}));
    }
    ops.reset();
    CHECK_FALSE(at::hasThreadLocalCallbacks());
    auto step = session.step();
    torch::mm(torch::ones({2, 3}), torch::ones({3, 4}));
  }
  const auto report = trainmeter::test::read_json(dir / "report.json");
  CHECK(report["ops"]["steps_accounted"] == 1);
  CHECK(report["ops"]["flops_per_step"].get<double>() == 2.0 * 2 * 3 * 4);
}

TEST_CASE("ops: steps aside while libtorch's profiler runs", "[torch][ops]") {
  using namespace torch::autograd::profiler;
  using torch::profiler::impl::ActivityType;
  using torch::profiler::impl::ProfilerConfig;
  using torch::profiler::impl::ProfilerState;
  trainmeter::test::TempDir dir;
  {
    trainmeter::Session session(ops_config(dir, 1, 0));
    auto ops = trainmeter::torch::account_ops(session);
    // libtorch 2.x's Kineto profiler must be prepared before it is enabled (as Python's
    // torch.profiler does); enabling an unprepared one crashes in kineto::startTrace().
    const ProfilerConfig config(ProfilerState::KINETO, /*report_input_shapes=*/true);
    prepareProfiler(config, {ActivityType::CPU});
    enableProfiler(config, {ActivityType::CPU});
    for (int i = 0; i < 4; ++i) {
      auto step = session.step();
      torch::mm(torch::ones({2, 3}), torch::ones({3, 4}));
    }
    auto result = disableProfiler();
    CHECK(result != nullptr);
    auto step = session.step();
    torch::mm(torch::ones({2, 3}), torch::ones({3, 4}));
  }
  const auto report = trainmeter::test::read_json(dir / "report.json");
  CHECK(trainmeter::test::schema_errors(dir / "report.json") == "");
  CHECK(report["ops"]["steps_skipped_profiler"] == 4);
  CHECK(report["ops"]["steps_accounted"] == 1);
  std::uint64_t skipped = 0;
  for (const auto& d : report["diagnostics"])
    if (d["source"] == "ops" && d["status"] == "skipped") skipped = d["count"].get<std::uint64_t>();
  CHECK(skipped == 4);
}

// --- instrument(): one guard, parts independent of their order --------------------------------

namespace {

// ops on every step from the first, with tensor-memory tracking on too.
trainmeter::Config memory_ops_config(const trainmeter::test::TempDir& dir) {
  auto cfg = ops_config(dir, 1, 0);
  cfg.track_tensor_memory = true;
  return cfg;
}

// One step that allocates 24 + 48 + 32 bytes of float32 tensors and runs one 2x3 by 3x4 mm
// (2 x 2 x 3 x 4 = 48 FLOPs).
void mm_step(trainmeter::Session& session) {
  auto step = session.step(1);
  torch::NoGradGuard no_grad;
  const auto a = torch::empty({2, 3}, torch::kFloat32);
  const auto b = torch::empty({3, 4}, torch::kFloat32);
  const auto c = torch::mm(a, b);
}

}  // namespace

TEST_CASE("instrument: memory and ops together, started and stopped in either order",
          "[torch][ops][instrument]") {
  at::set_num_threads(1);
  for (const bool memory_first : {true, false})
    for (const bool stop_memory_first : {true, false}) {
      INFO("started " << (memory_first ? "memory, then ops" : "ops, then memory") << "; stopped "
                      << (stop_memory_first ? "memory first" : "ops first"));
      trainmeter::test::TempDir dir;
      {
        trainmeter::Session session(memory_ops_config(dir));
        trainmeter::torch::Instrumentation memory, ops;
        if (memory_first) {
          memory = trainmeter::torch::track_memory(session);
          ops = trainmeter::torch::account_ops(session);
        } else {
          ops = trainmeter::torch::account_ops(session);
          memory = trainmeter::torch::track_memory(session);
        }
        REQUIRE(memory.memory_active());
        REQUIRE_FALSE(memory.ops_active());
        REQUIRE(ops.ops_active());
        REQUIRE_FALSE(ops.memory_active());
        mm_step(session);
        mm_step(session);
        (stop_memory_first ? memory : ops).reset();
        mm_step(session);
        (stop_memory_first ? ops : memory).reset();
        CHECK_FALSE(at::hasThreadLocalCallbacks());
        mm_step(session);
        session.finish();
      }
      const auto report = trainmeter::test::read_json(dir / "report.json");
      CHECK(trainmeter::test::schema_errors(dir / "report.json") == "");
      const auto& steps = report["steps"];
      REQUIRE(steps.size() == 4);
      for (int i = 0; i < 2; ++i) {
        CHECK(steps[i]["peak_tensor_bytes"] == 24 + 48 + 32);
        CHECK(steps[i].value("ops_accounted", false));
        CHECK(steps[i]["ops_flops"].get<double>() == 48.0);
      }
      // The part still running after the first stop keeps measuring; the stopped one says null
      // (memory) or not accounted (ops).
      if (stop_memory_first) {
        CHECK(steps[2]["peak_tensor_bytes"].is_null());
        CHECK(steps[2].value("ops_accounted", false));
        CHECK(steps[2]["ops_flops"].get<double>() == 48.0);
      } else {
        CHECK(steps[2]["peak_tensor_bytes"] == 24 + 48 + 32);
        CHECK_FALSE(steps[2].value("ops_accounted", false));
      }
      CHECK(steps[3]["peak_tensor_bytes"].is_null());
      CHECK_FALSE(steps[3].value("ops_accounted", false));
      CHECK(report["ops"]["steps_accounted"] == (stop_memory_first ? 3 : 2));
      CHECK(report["memory"]["peak_tensor_bytes"]["cpu"] == 24 + 48 + 32);
      for (const auto& d : report["diagnostics"]) CHECK(d["status"] != "error");
    }
}

TEST_CASE("instrument: one guard for every part, each following its configuration key",
          "[torch][ops][instrument]") {
  at::set_num_threads(1);
  trainmeter::test::TempDir dir;
  {
    trainmeter::Session session(memory_ops_config(dir));
    auto tm = trainmeter::torch::instrument(session);
    REQUIRE(tm.memory_active());
    REQUIRE(tm.ops_active());
    // A second guard for the same session starts nothing: each part already runs.
    auto again = trainmeter::torch::instrument(session);
    CHECK_FALSE(again.active());
    mm_step(session);
    tm.reset_ops();
    CHECK(tm.memory_active());
    CHECK_FALSE(tm.ops_active());
    mm_step(session);
    tm.reset();
    CHECK_FALSE(tm.active());
    mm_step(session);
  }
  auto report = trainmeter::test::read_json(dir / "report.json");
  CHECK(report["ops"]["steps_accounted"] == 1);
  CHECK(report["steps"][1]["peak_tensor_bytes"] == 24 + 48 + 32);
  CHECK(report["steps"][2]["peak_tensor_bytes"].is_null());

  // ops off (its default): instrument() starts memory alone, and says nothing about ops.
  trainmeter::test::TempDir dir2;
  auto cfg = memory_ops_config(dir2);
  cfg.ops = false;
  {
    trainmeter::Session session(cfg);
    auto tm = trainmeter::torch::instrument(session);
    CHECK(tm.memory_active());
    CHECK_FALSE(tm.ops_active());
    mm_step(session);
  }
  report = trainmeter::test::read_json(dir2 / "report.json");
  CHECK(report["ops"].is_null());
  CHECK(report["steps"][0]["peak_tensor_bytes"] == 24 + 48 + 32);
  for (const auto& d : report["diagnostics"]) CHECK(d["source"] != "ops");
}
