/* A stand-in for libnvidia-ml.so.1, loaded by the tests through the real dlopen path. Readings are
 * scripted with environment variables, read again at every nvmlInit_v2:
 *   FAKE_NVML_GPUS=n                      number of GPUs (default 1)
 *   FAKE_NVML_INIT_RESULT=r               nvmlInit_v2's return value (default 0)
 *   FAKE_NVML_GPU<i>_NAME, _UUID          strings
 *   FAKE_NVML_GPU<i>_ENERGY_MJ=a,b,c      successive nvmlDeviceGetTotalEnergyConsumption values
 *   FAKE_NVML_GPU<i>_POWER_MW=a,b,c       successive nvmlDeviceGetPowerUsage values
 *   FAKE_NVML_GPU<i>_UTIL=a,b,c           successive utilisation.gpu values (percent)
 *   FAKE_NVML_GPU<i>_MEM_USED=a,b,c       successive memory used values (bytes); _MEM_TOTAL=n
 *   FAKE_NVML_GPU<i>_POWER_LIMIT_MW=n
 *   FAKE_NVML_GPU<i>_FAIL_AFTER=n         energy and power calls fail after n successful calls
 *   FAKE_NVML_GPU<i>_PROCS=pid:bytes,...  compute processes ("self" = the calling process)
 * A list's last value repeats; an absent list makes the call return NVML_ERROR_NOT_SUPPORTED.
 * Built twice more with FAKE_NVML_OMIT_ENERGY / FAKE_NVML_OMIT_HANDLE to test missing symbols. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../fake_series.h"

#define MAX_GPUS 8
#define EXPORT __attribute__((visibility("default")))

typedef int nvmlReturn_t;
typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;
typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_t;

typedef struct {
  char name[96], uuid[96];
  Series energy, power, util, mem_used;
  unsigned long long mem_total, power_limit;
  int fail_after, calls;
  unsigned int proc_pid[16];
  unsigned long long proc_mem[16];
  int procs;
} Gpu;

static Gpu gpus[MAX_GPUS];
static int gpu_count = 0;
static int initialised = 0;

static const char* env(int i, const char* key) {
  char name[96];
  snprintf(name, sizeof name, "FAKE_NVML_GPU%d_%s", i, key);
  return getenv(name);
}

static Gpu* gpu_of(void* device) {
  Gpu* g = (Gpu*)device;
  return (g >= gpus && g < gpus + gpu_count) ? g : NULL;
}

static int failing(Gpu* g) { return g->fail_after >= 0 && g->calls++ >= g->fail_after; }

EXPORT nvmlReturn_t nvmlInit_v2(void) {
  const char* r = getenv("FAKE_NVML_INIT_RESULT");
  if (r != NULL && atoi(r) != 0) return atoi(r);
  const char* n = getenv("FAKE_NVML_GPUS");
  gpu_count = n ? atoi(n) : 1;
  if (gpu_count > MAX_GPUS) gpu_count = MAX_GPUS;
  for (int i = 0; i < gpu_count; ++i) {
    Gpu* g = &gpus[i];
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", env(i, "NAME") ? env(i, "NAME") : "Fake GPU");
    snprintf(g->uuid, sizeof g->uuid, "%s", env(i, "UUID") ? env(i, "UUID") : "GPU-fake");
    parse_series(&g->energy, env(i, "ENERGY_MJ"));
    parse_series(&g->power, env(i, "POWER_MW"));
    parse_series(&g->util, env(i, "UTIL"));
    parse_series(&g->mem_used, env(i, "MEM_USED"));
    g->mem_total = env(i, "MEM_TOTAL") ? strtoull(env(i, "MEM_TOTAL"), NULL, 10) : 0;
    g->power_limit = env(i, "POWER_LIMIT_MW") ? strtoull(env(i, "POWER_LIMIT_MW"), NULL, 10) : 0;
    g->fail_after = env(i, "FAIL_AFTER") ? atoi(env(i, "FAIL_AFTER")) : -1;
    const char* p = env(i, "PROCS");
    while (p && *p && g->procs < 16) {
      char* end = NULL;
      if (strncmp(p, "self", 4) == 0) {
        g->proc_pid[g->procs] = (unsigned int)getpid();
        end = (char*)p + 4;
      } else {
        g->proc_pid[g->procs] = (unsigned int)strtoul(p, &end, 10);
      }
      g->proc_mem[g->procs] = (*end == ':') ? strtoull(end + 1, &end, 10) : 0;
      g->procs++;
      p = *end == ',' ? end + 1 : end;
      if (*end != ',') break;
    }
  }
  initialised = 1;
  return 0;
}

EXPORT nvmlReturn_t nvmlShutdown(void) {
  initialised = 0;
  return 0;
}

EXPORT const char* nvmlErrorString(nvmlReturn_t r) {
  switch (r) {
    case 3: return "Not Supported";
    case 15: return "GPU is lost";
    default: return "Unknown Error";
  }
}

EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* count) {
  if (!initialised) return 1;
  *count = (unsigned int)gpu_count;
  return 0;
}

#ifndef FAKE_NVML_OMIT_HANDLE
EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, void** device) {
  if (!initialised) return 1;
  if (index >= (unsigned int)gpu_count) return 2;
  *device = &gpus[index];
  return 0;
}
#endif

EXPORT nvmlReturn_t nvmlDeviceGetName(void* device, char* name, unsigned int length) {
  Gpu* g = gpu_of(device);
  if (!g) return 2;
  snprintf(name, length, "%s", g->name);
  return 0;
}

EXPORT nvmlReturn_t nvmlDeviceGetUUID(void* device, char* uuid, unsigned int length) {
  Gpu* g = gpu_of(device);
  if (!g) return 2;
  snprintf(uuid, length, "%s", g->uuid);
  return 0;
}

#ifndef FAKE_NVML_OMIT_ENERGY
EXPORT nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(void* device, unsigned long long* mj) {
  Gpu* g = gpu_of(device);
  if (!g) return 2;
  if (g->energy.count == 0) return 3;
  if (failing(g)) return 15;
  return take(&g->energy, mj) == 0 ? 0 : 3;
}
#endif

EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(void* device, unsigned int* mw) {
  Gpu* g = gpu_of(device);
  unsigned long long v = 0;
  if (!g) return 2;
  if (g->power.count == 0) return 3;
  if (failing(g)) return 15;
  if (take(&g->power, &v) != 0) return 3;
  *mw = (unsigned int)v;
  return 0;
}

EXPORT nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(void* device, unsigned int* mw) {
  Gpu* g = gpu_of(device);
  if (!g) return 2;
  if (g->power_limit == 0) return 3;
  *mw = (unsigned int)g->power_limit;
  return 0;
}

EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(void* device, nvmlUtilization_t* u) {
  Gpu* g = gpu_of(device);
  unsigned long long v = 0;
  if (!g) return 2;
  if (take(&g->util, &v) != 0) return 3;
  u->gpu = (unsigned int)v;
  u->memory = 0;
  return 0;
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(void* device, nvmlMemory_t* m) {
  Gpu* g = gpu_of(device);
  unsigned long long v = 0;
  if (!g) return 2;
  if (g->mem_total == 0) return 3;
  if (take(&g->mem_used, &v) != 0) v = 0;
  m->total = g->mem_total;
  m->used = v;
  m->free = g->mem_total - v;
  return 0;
}

EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(void* device, unsigned int* count,
                                                            nvmlProcessInfo_t* infos) {
  Gpu* g = gpu_of(device);
  if (!g) return 2;
  if (*count < (unsigned int)g->procs) {
    *count = (unsigned int)g->procs;
    return 7;
  }
  for (int i = 0; i < g->procs; ++i) {
    infos[i].pid = g->proc_pid[i];
    infos[i].usedGpuMemory = g->proc_mem[i];
    infos[i].gpuInstanceId = infos[i].computeInstanceId = 0;
  }
  *count = (unsigned int)g->procs;
  return 0;
}
