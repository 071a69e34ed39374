/* Scripted value series for the fake vendor libraries (fake_nvml.c, fake_amdsmi.c): a
 * comma-separated list of integers, handed out one per call; the last value repeats. */
#ifndef TRAINMETER_TESTS_FAKE_SERIES_H
#define TRAINMETER_TESTS_FAKE_SERIES_H

#include <stdlib.h>

#define MAX_VALUES 64

typedef struct {
  unsigned long long values[MAX_VALUES];
  int count, next;
} Series;

static void parse_series(Series* s, const char* text) {
  s->count = s->next = 0;
  if (text == NULL) return;
  while (*text && s->count < MAX_VALUES) {
    char* end = NULL;
    s->values[s->count++] = strtoull(text, &end, 10);
    if (end == text) break;
    text = *end == ',' ? end + 1 : end;
  }
}

/* 0 and the next value, or -1 when the series is absent. */
static int take(Series* s, unsigned long long* out) {
  if (s->count == 0) return -1;
  *out = s->values[s->next < s->count ? s->next : s->count - 1];
  if (s->next < s->count) s->next++;
  return 0;
}

#endif
