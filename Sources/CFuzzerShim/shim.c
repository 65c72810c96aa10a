#include "CFuzzerShim.h"

int cfe_fuzzer_available(void) { return LLVMFuzzerRunDriver != 0; }
