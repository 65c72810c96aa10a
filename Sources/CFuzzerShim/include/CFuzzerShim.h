#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver, present only in builds linked with -sanitize=fuzzer.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size)) __attribute__((weak));

/// Whether this binary was linked with libFuzzer.
int cfe_fuzzer_available(void);
