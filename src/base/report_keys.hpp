// The report's keys: every property name of docs/report.schema.json, spelled once, here.
// Code that writes or reads a report names a key as `rk::energy_j`, never as the literal
// "energy_j"; JSON pointers and dotted figure names are built from the same constants
// (rk::pointer(rk::energy, rk::total_j) is "/energy/total_j"). The test report_keys_test checks
// both ways: this list equals the schema's property names, and no source file under src/ spells
// one of them as a string literal (the configuration key table, core/config.cpp, is the one place
// for configuration keys and is not scanned). Adding a report key: add it to the schema and here.
// Layer: base, so every module above can use it.
#pragma once

#include <string>
#include <string_view>

/// X(name) for each key whose name is a C++ identifier.
#define TRAINMETER_REPORT_KEYS(X)        \
  X(accounted_wall_ns)                   \
  X(achieved_flops_per_s)                \
  X(active)                              \
  X(adam)                                \
  X(aligned_steps)                       \
  X(allocated_bytes)                     \
  X(allocated_peak_bytes)                \
  X(attributed_share)                    \
  X(attribution)                         \
  X(average_power_w)                     \
  X(backend)                             \
  X(between_steps)                       \
  X(block_steps)                         \
  X(boot_id)                             \
  X(buffer_bytes)                        \
  X(buffer_tensors)                      \
  X(buffers)                             \
  X(build)                               \
  X(busy_fraction)                       \
  X(busy_ns)                             \
  X(by)                                  \
  X(bytes_by_dtype)                      \
  X(callback_install_ns_per_step)        \
  X(calls)                               \
  X(calls_per_step)                      \
  X(car_g_per_km)                        \
  X(car_km)                              \
  X(car_lifetime_fraction)               \
  X(car_lifetime_kg)                     \
  X(car_lifetime_lb)                     \
  X(car_lifetime_source)                 \
  X(car_source)                          \
  X(carbon)                              \
  X(co2e_kg)                             \
  X(columns)                             \
  X(command_line)                        \
  X(compared_steps)                      \
  X(components)                          \
  X(compute)                             \
  X(config)                              \
  X(constants)                           \
  X(cost)                                \
  X(count)                               \
  X(coverage)                            \
  X(covered_ns)                          \
  X(cpu_events)                          \
  X(cpu_model)                           \
  X(cpu_ns)                              \
  X(cpu_time_ns)                         \
  X(cpu_time_s)                          \
  X(cuda)                                \
  X(cuda_version)                        \
  X(currency)                            \
  X(current_bytes_at_finish)             \
  X(current_rss_bytes)                   \
  X(data_source)                         \
  X(data_year)                           \
  X(decimations)                         \
  X(device)                              \
  X(diagnostics)                         \
  X(discarded_intervals)                 \
  X(distinct_ops)                        \
  X(dropped)                             \
  X(duration_h)                          \
  X(duration_s)                          \
  X(enabled)                             \
  X(end_utc)                             \
  X(energy)                              \
  X(energy_after_last_sample_fraction)   \
  X(energy_apportioned)                  \
  X(energy_before_first_sample_fraction) \
  X(energy_j)                            \
  X(energy_kwh)                          \
  X(energy_kwh_with_pue)                 \
  X(energy_price_per_kwh)                \
  X(energy_weighted_mean_g_per_kwh)      \
  X(equivalents)                         \
  X(every)                               \
  X(evidence)                            \
  X(expected_gain)                       \
  X(failed_reads)                        \
  X(file)                                \
  X(findings)                            \
  X(first)                               \
  X(first_utc)                           \
  X(flops)                               \
  X(flops_per_step)                      \
  X(flops_unknown_calls)                 \
  X(formula)                             \
  X(fraction)                            \
  X(from)                                \
  X(frozen_parameters)                   \
  X(gather)                              \
  X(getrusage_max_rss_bytes)             \
  X(gpu_busy_fraction)                   \
  X(gpu_ns)                              \
  X(gpu_time_ns)                         \
  X(gpu_timing)                          \
  X(gpus)                                \
  X(host)                                \
  X(hostname)                            \
  X(hosts)                               \
  X(id)                                  \
  X(index)                               \
  X(inputs)                              \
  X(intensity_g_per_kwh)                 \
  X(intensity_source)                    \
  X(interval_ms)                         \
  X(items)                               \
  X(kernel)                              \
  X(key)                                 \
  X(last)                                \
  X(last_message)                        \
  X(last_utc)                            \
  X(local_rank)                          \
  X(local_world_size)                    \
  X(logical_cpus)                        \
  X(loss)                                \
  X(machine_average_power_w)             \
  X(machine_energy_j)                    \
  X(master_addr)                         \
  X(master_port)                         \
  X(max)                                 \
  X(max_ns)                              \
  X(max_points)                          \
  X(mean)                                \
  X(memory)                              \
  X(memory_bytes)                        \
  X(merged)                              \
  X(merged_by)                           \
  X(message)                             \
  X(method)                              \
  X(metrics)                             \
  X(min)                                 \
  X(missing)                             \
  X(missing_ranks)                       \
  X(mode)                                \
  X(model)                               \
  X(name)                                \
  X(not_checked)                         \
  X(notes)                               \
  X(ops)                                 \
  X(ops_on_other_threads)                \
  X(optimizer_state_bytes_estimate)      \
  X(origin)                              \
  X(original_co2e_kg)                    \
  X(original_intensity_g_per_kwh)        \
  X(original_intensity_source)           \
  X(original_pue)                        \
  X(os)                                  \
  X(other_device_events)                 \
  X(out_of_memory_events)                \
  X(p50)                                 \
  X(p50_ns)                              \
  X(p90)                                 \
  X(p90_ns)                              \
  X(p95)                                 \
  X(p99)                                 \
  X(parameter_bytes)                     \
  X(parameter_tensors)                   \
  X(parameters)                          \
  X(payload_bytes)                       \
  X(peak_cuda_tensor_bytes)              \
  X(peak_rss_bytes)                      \
  X(peak_rss_source)                     \
  X(peak_tensor_bytes)                   \
  X(per_rank)                            \
  X(percentile_relative_error)           \
  X(percentiles_exact)                   \
  X(phase)                               \
  X(phases)                              \
  X(points)                              \
  X(present)                             \
  X(price_per_hour)                      \
  X(provenance)                          \
  X(pue)                                 \
  X(rank)                                \
  X(ranking)                             \
  X(ranks)                               \
  X(ranks_present)                       \
  X(reason)                              \
  X(recomputed)                          \
  X(region)                              \
  X(region_name)                         \
  X(relative_accuracy)                   \
  X(reserved_bytes)                      \
  X(reserved_peak_bytes)                 \
  X(rows)                                \
  X(rule)                                \
  X(run)                                 \
  X(run_id)                              \
  X(sample_interval_ms)                  \
  X(sampled_peak_rss_bytes)              \
  X(samples)                             \
  X(samples_in_run)                      \
  X(samples_per_s)                       \
  X(schema_version)                      \
  X(scope)                               \
  X(self_cpu_ns)                         \
  X(severity)                            \
  X(sgd_momentum)                        \
  X(share_of_wall)                       \
  X(shared_tensors)                      \
  X(slowest_rank_counts)                 \
  X(slowest_steps)                       \
  X(source)                              \
  X(sources_tried)                       \
  X(start_offset_ns)                     \
  X(start_utc)                           \
  X(status)                              \
  X(stddev)                              \
  X(step_alignment)                      \
  X(step_attribution)                    \
  X(step_blocks)                         \
  X(step_time_ns)                        \
  X(steps)                               \
  X(steps_accounted)                     \
  X(steps_before_active)                 \
  X(steps_complete)                      \
  X(steps_dropped)                       \
  X(steps_failed)                        \
  X(steps_pool_exhausted)                \
  X(steps_recorded)                      \
  X(steps_retained)                      \
  X(steps_seen)                          \
  X(steps_skipped_profiler)              \
  X(steps_timed)                         \
  X(steps_unresolved)                    \
  X(straggler_rank)                      \
  X(stream)                              \
  X(summary_bytes)                       \
  X(system)                              \
  X(tags)                                \
  X(tensor_tracking)                     \
  X(thread)                              \
  X(time_series)                         \
  X(time_weighted_mean_g_per_kwh)        \
  X(timeline)                            \
  X(timeout_ms)                          \
  X(title)                               \
  X(tokens)                              \
  X(tokens_per_s)                        \
  X(top)                                 \
  X(torch_inter_op_threads)              \
  X(torch_intra_op_threads)              \
  X(torch_version)                       \
  X(total)                               \
  X(total_bytes)                         \
  X(total_cpu_ns)                        \
  X(total_j)                             \
  X(total_kwh)                           \
  X(total_kwh_with_pue)                  \
  X(total_ns)                            \
  X(trainable_parameters)                \
  X(trainmeter)                          \
  X(unavailable_reason)                  \
  X(undefined_tensors)                   \
  X(unit)                                \
  X(user)                                \
  X(value)                               \
  X(version)                             \
  X(wall_ns)                             \
  X(warmup)                              \
  X(warmup_steps)                        \
  X(weighting)                           \
  X(world_size)                          \
  X(zero_fraction)                       \
  X(zero_parameters)

/// X(identifier, name) for each key whose name is a C++ keyword: the constant gets a trailing _.
#define TRAINMETER_REPORT_KEYWORD_KEYS(X) X(try_, try)

namespace trainmeter::rk {

#define TRAINMETER_RK_CONSTANT(name) inline constexpr char name[] = #name;
#define TRAINMETER_RK_KEYWORD_CONSTANT(id, name) inline constexpr char id[] = #name;
TRAINMETER_REPORT_KEYS(TRAINMETER_RK_CONSTANT)
TRAINMETER_REPORT_KEYWORD_KEYS(TRAINMETER_RK_KEYWORD_CONSTANT)
#undef TRAINMETER_RK_CONSTANT
#undef TRAINMETER_RK_KEYWORD_CONSTANT

/// Every key, for checks (the schema test, validators).
#define TRAINMETER_RK_ENTRY(name) std::string_view{#name},
#define TRAINMETER_RK_KEYWORD_ENTRY(id, name) std::string_view{#name},
inline constexpr std::string_view kAll[] = {TRAINMETER_REPORT_KEYS(
    TRAINMETER_RK_ENTRY) TRAINMETER_REPORT_KEYWORD_KEYS(TRAINMETER_RK_KEYWORD_ENTRY)};
#undef TRAINMETER_RK_ENTRY
#undef TRAINMETER_RK_KEYWORD_ENTRY

/// "/a/b": a JSON pointer through keys (or other segments: a phase name, an index).
template <class... Segments>
std::string pointer(const Segments&... segments) {
  std::string out;
  ((out += '/', out += std::string_view{segments}), ...);
  return out;
}

/// "a.b": the dotted name of a figure, as findings' evidence and CSV columns name it.
template <class First, class... Rest>
std::string dotted(const First& first, const Rest&... rest) {
  std::string out{std::string_view{first}};
  ((out += '.', out += std::string_view{rest}), ...);
  return out;
}

}  // namespace trainmeter::rk
