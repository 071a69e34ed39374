/* A stand-in for ROCm's libamd_smi.so, loaded by the tests through the real dlopen path. Readings
 * are scripted with environment variables, read again at every amdsmi_init:
 *   FAKE_AMDSMI_INIT_RESULT=r              amdsmi_init's return value (default 0)
 *   FAKE_AMDSMI_SOCKETS=s                  sockets (default 1)
 *   FAKE_AMDSMI_GPUS_PER_SOCKET=n          GPUs per socket (default 1); GPU i is on socket i / n
 *   FAKE_AMDSMI_CPU_FIRST=1                socket 0 lists an AMD CPU processor before its GPUs
 *   FAKE_AMDSMI_GPU<i>_NAME, _UUID         strings (asic_info.market_name, device uuid)
 *   FAKE_AMDSMI_GPU<i>_ENERGY_TICKS=a,b,c  successive amdsmi_get_energy_count counter values
 *   FAKE_AMDSMI_GPU<i>_RESOLUTION_UJ=x     counter_resolution (microjoules per tick, a float)
 *   FAKE_AMDSMI_GPU<i>_VRAM_USED=a,b,c     successive amdsmi_get_gpu_memory_usage(VRAM) bytes
 *   FAKE_AMDSMI_GPU<i>_VRAM_TOTAL=n        amdsmi_get_gpu_memory_total(VRAM) bytes
 *   FAKE_AMDSMI_GPU<i>_FAIL_AFTER=n        energy calls fail (AMDSMI_STATUS_IO) after n successes
 * A list's last value repeats; an absent list makes the call return AMDSMI_STATUS_NOT_SUPPORTED.
 * Built twice more with FAKE_AMDSMI_OMIT_ENERGY / FAKE_AMDSMI_OMIT_HANDLES to test missing
 * symbols. Declarations follow ROCm's amd_smi/amdsmi.h. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fake_series.h"

#define MAX_GPUS 8
#define EXPORT __attribute__((visibility("default")))

enum { kSuccess = 0, kInval = 1, kNotSupported = 2, kIo = 12, kNotInit = 32 };
enum { kTypeAmdGpu = 1, kTypeAmdCpu = 2 };
enum { kMemVram = 0 };

typedef struct {
  int type;
  char name[96], uuid[96];
  Series energy, vram_used;
  float resolution;
  unsigned long long vram_total;
  int fail_after, calls;
} Processor;

static Processor gpus[MAX_GPUS];
static Processor cpu = {.type = kTypeAmdCpu};
static int gpu_count = 0, sockets = 1, per_socket = 1, cpu_first = 0;
static int socket_ids[16];
static int initialised = 0;

static const char* env(int i, const char* key) {
  char name[96];
  snprintf(name, sizeof name, "FAKE_AMDSMI_GPU%d_%s", i, key);
  return getenv(name);
}

static Processor* gpu_of(void* handle) {
  Processor* g = (Processor*)handle;
  return (g >= gpus && g < gpus + gpu_count) ? g : NULL;
}

EXPORT int amdsmi_init(uint64_t flags) {
  const char* r = getenv("FAKE_AMDSMI_INIT_RESULT");
  if (r != NULL && atoi(r) != 0) return atoi(r);
  if ((flags & (1u << 1)) == 0) return kInval; /* we only ask for AMD GPUs */
  sockets = getenv("FAKE_AMDSMI_SOCKETS") ? atoi(getenv("FAKE_AMDSMI_SOCKETS")) : 1;
  per_socket = getenv("FAKE_AMDSMI_GPUS_PER_SOCKET") ? atoi(getenv("FAKE_AMDSMI_GPUS_PER_SOCKET"))
                                                      : 1;
  if (sockets < 0 || sockets > 16) sockets = 16;
  if (per_socket < 0) per_socket = 0;
  gpu_count = sockets * per_socket;
  if (gpu_count > MAX_GPUS) gpu_count = MAX_GPUS;
  cpu_first = getenv("FAKE_AMDSMI_CPU_FIRST") != NULL;
  for (int i = 0; i < gpu_count; ++i) {
    Processor* g = &gpus[i];
    memset(g, 0, sizeof *g);
    g->type = kTypeAmdGpu;
    snprintf(g->name, sizeof g->name, "%s", env(i, "NAME") ? env(i, "NAME") : "");
    snprintf(g->uuid, sizeof g->uuid, "%s", env(i, "UUID") ? env(i, "UUID") : "");
    parse_series(&g->energy, env(i, "ENERGY_TICKS"));
    parse_series(&g->vram_used, env(i, "VRAM_USED"));
    g->resolution = env(i, "RESOLUTION_UJ") ? strtof(env(i, "RESOLUTION_UJ"), NULL) : 15.3f;
    g->vram_total = env(i, "VRAM_TOTAL") ? strtoull(env(i, "VRAM_TOTAL"), NULL, 10) : 0;
    g->fail_after = env(i, "FAIL_AFTER") ? atoi(env(i, "FAIL_AFTER")) : -1;
  }
  initialised = 1;
  return kSuccess;
}

EXPORT int amdsmi_shut_down(void) {
  initialised = 0;
  return kSuccess;
}

EXPORT int amdsmi_status_code_to_string(int status, const char** text) {
  switch (status) {
    case kNotSupported: *text = "AMDSMI_STATUS_NOT_SUPPORTED: Feature not supported"; break;
    case kIo: *text = "AMDSMI_STATUS_IO: I/O Error"; break;
    default: *text = "AMDSMI_STATUS_UNKNOWN_ERROR: An unknown error occurred"; break;
  }
  return kSuccess;
}

EXPORT int amdsmi_get_socket_handles(uint32_t* count, void** handles) {
  if (!initialised) return kNotInit;
  if (count == NULL) return kInval;
  if (handles == NULL) {
    *count = (uint32_t)sockets;
    return kSuccess;
  }
  if (*count > (uint32_t)sockets) *count = (uint32_t)sockets;
  for (uint32_t i = 0; i < *count; ++i) {
    socket_ids[i] = (int)i;
    handles[i] = &socket_ids[i];
  }
  return kSuccess;
}

#ifndef FAKE_AMDSMI_OMIT_HANDLES
EXPORT int amdsmi_get_processor_handles(void* socket, uint32_t* count, void** handles) {
  if (!initialised) return kNotInit;
  int* id = (int*)socket;
  if (count == NULL || id < socket_ids || id >= socket_ids + sockets) return kInval;
  void* list[MAX_GPUS + 1];
  uint32_t n = 0;
  if (*id == 0 && cpu_first) list[n++] = &cpu;
  for (int i = *id * per_socket; i < (*id + 1) * per_socket && i < gpu_count; ++i)
    list[n++] = &gpus[i];
  if (handles == NULL) {
    *count = n;
    return kSuccess;
  }
  if (*count > n) *count = n;
  for (uint32_t i = 0; i < *count; ++i) handles[i] = list[i];
  return kSuccess;
}
#endif

EXPORT int amdsmi_get_processor_type(void* handle, int* type) {
  if (handle == &cpu) {
    *type = kTypeAmdCpu;
    return kSuccess;
  }
  if (!gpu_of(handle)) return kInval;
  *type = kTypeAmdGpu;
  return kSuccess;
}

/* amdsmi_asic_info_t: char market_name[256] first; the rest is left zero here. */
EXPORT int amdsmi_get_gpu_asic_info(void* handle, void* info) {
  Processor* g = gpu_of(handle);
  if (!g || !info) return kInval;
  memset(info, 0, 896);
  snprintf((char*)info, 256, "%s", g->name);
  return kSuccess;
}

EXPORT int amdsmi_get_gpu_device_uuid(void* handle, unsigned int* length, char* uuid) {
  Processor* g = gpu_of(handle);
  if (!g || !length || !uuid) return kInval;
  snprintf(uuid, *length, "%s", g->uuid);
  *length = (unsigned int)strlen(uuid);
  return kSuccess;
}

#ifndef FAKE_AMDSMI_OMIT_ENERGY
EXPORT int amdsmi_get_energy_count(void* handle, uint64_t* counter, float* resolution,
                                   uint64_t* timestamp) {
  Processor* g = gpu_of(handle);
  unsigned long long v = 0;
  if (!g || !counter || !resolution || !timestamp) return kInval;
  if (g->energy.count == 0) return kNotSupported;
  if (g->fail_after >= 0 && g->calls++ >= g->fail_after) return kIo;
  if (take(&g->energy, &v) != 0) return kNotSupported;
  *counter = v;
  *resolution = g->resolution;
  *timestamp = 0;
  return kSuccess;
}
#endif

EXPORT int amdsmi_get_gpu_memory_total(void* handle, int type, uint64_t* total) {
  Processor* g = gpu_of(handle);
  if (!g || !total || type != kMemVram) return kInval;
  if (g->vram_total == 0) return kNotSupported;
  *total = g->vram_total;
  return kSuccess;
}

EXPORT int amdsmi_get_gpu_memory_usage(void* handle, int type, uint64_t* used) {
  Processor* g = gpu_of(handle);
  unsigned long long v = 0;
  if (!g || !used || type != kMemVram) return kInval;
  if (take(&g->vram_used, &v) != 0) return kNotSupported;
  *used = v;
  return kSuccess;
}
