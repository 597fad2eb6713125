# Makefile: builds libhalfs.a, the `halfs` CLI, the tests and the fuzz targets.
#
#   make                 library + CLI at build/halfs
#   make test            every test (tests/run.sh prints "tests: N passed, N failed"), the layer
#                        check (tests/check_layers.sh) counted as one
#   make core            src/core alone: build/libhalfs_core.a and the core tests linked to it
#   make check-layers    only the layer check
#   make SAN=1 test      the same under AddressSanitizer + UBSan (into build-san/)
#   make BUILD=dir ...   build somewhere else (parallel work trees)
#   make BUILD/libhalfs.so  the shared library the Python package loads (python/, docs/PYTHON.md)
#   make MPI=0           without Open MPI even where mpicc is installed (src/train/dist.c then
#                        builds its single-process side; `mpirun` runs of it are refused)
#
# Sources are found by wildcard: a new file under src/<module>/ joins the library, a new
# tests/test_*.c becomes a test program, tools/*.c and bench/*.c make up the CLI. The modules are
# layers, each using only those before it: core, kernels, analysis, nn, train, then the CLI
# (tests/check_layers.sh states and checks the rule). Files under
# src/kernels/avx2/ and src/kernels/avx512/ are compiled with that ISA's flags only; the
# dispatcher picks them at run time, so the binary still runs on any x86-64.

ifeq ($(origin CC),default)
CC      = gcc
endif
SAN     ?= 0
ifeq ($(SAN),1)
BUILD   ?= build-san
OPT     ?= -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
else
BUILD   ?= build
OPT     ?= -O2
endif

# No -ffast-math anywhere: quantization depends on exact IEEE rounding.
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g -fopenmp -fno-math-errno \
              -Iinclude -Isrc $(OPT)
CFLAGS  += $(CFLAGS_BASE)
# PIC=1: the position-independent objects of libhalfs.so (a sub-make into $(BUILD)/pic, below).
ifeq ($(PIC),1)
CFLAGS  += -fPIC
endif
# -lz: the embedded corpus (data/*.txt.gz) is read with zlib's gzread (src/train/corpus.c).
LDLIBS  += -lopenblas -lcjson -lz -lm
comma := ,
LDFLAGS += -fopenmp $(if $(filter 1,$(SAN)),-fsanitize=address$(comma)undefined)

ISA_avx2   = -mavx2 -mfma -mf16c
ISA_avx512 = -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx512vnni \
             -mavx512bf16 -mavx512vbmi

# Open MPI (data-parallel training, src/train/dist.c): found through mpicc's wrapper flags; the
# build works without it. Only dist.c includes mpi.h; everything links libmpi.
MPI ?= $(if $(shell command -v mpicc 2>/dev/null),1,0)
ifeq ($(MPI),1)
MPI_CFLAGS := -DHS_HAVE_MPI $(shell mpicc --showme:compile)
LDLIBS     += $(shell mpicc --showme:link)
endif

LIB_SRC   := $(sort $(wildcard src/*/*.c src/kernels/*/*.c))
TOOL_SRC  := $(sort $(wildcard tools/*.c bench/*.c))
TEST_SRC  := $(sort $(wildcard tests/test_*.c))
TEST_UTIL := $(sort $(wildcard tests/util_*.c))

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
TOOL_OBJ  := $(TOOL_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_UOBJ := $(TEST_UTIL:%.c=$(BUILD)/obj/%.o)
LIB       := $(BUILD)/libhalfs.a
CLI       := $(BUILD)/halfs

# src/core alone, and the tests that need nothing else (they link against it only).
CORE_SRC  := $(sort $(wildcard src/core/*.c))
CORE_OBJ  := $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
CORE_LIB  := $(BUILD)/libhalfs_core.a
CORE_TEST := $(BUILD)/core-tests/test_codec $(BUILD)/core-tests/test_rht
LAYERS    := $(BUILD)/tests/test_layers

.PHONY: all test tests clean core check-layers FORCE
all: $(CLI) tests $(BUILD)/libhalfs.so

$(BUILD)/obj/src/kernels/avx2/%.o: src/kernels/avx2/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ISA_avx2) -MMD -MP -c $< -o $@

$(BUILD)/obj/src/kernels/avx512/%.o: src/kernels/avx512/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ISA_avx512) -MMD -MP -c $< -o $@

# Hot micro-kernels (src/kernels/*/*_ukernel.c, no OpenMP inside) are compiled with clang when
# it is installed: gcc 12 fills their VNNI/BF16 loops with register copies and spills (half the
# speed; docs/KERNELS.md). Sanitizer builds and machines without clang use $(CC).
UKERNEL_CC := $(if $(filter 1,$(SAN)),$(CC),$(or $(shell command -v clang 2>/dev/null),$(CC)))
UKERNEL_CFLAGS = $(filter-out -fopenmp,$(CFLAGS))
$(BUILD)/obj/src/kernels/avx512/%_ukernel.o: src/kernels/avx512/%_ukernel.c
	@mkdir -p $(dir $@)
	$(UKERNEL_CC) $(UKERNEL_CFLAGS) $(ISA_avx512) -MMD -MP -c $< -o $@

$(BUILD)/obj/src/kernels/avx2/%_ukernel.o: src/kernels/avx2/%_ukernel.c
	@mkdir -p $(dir $@)
	$(UKERNEL_CC) $(UKERNEL_CFLAGS) $(ISA_avx2) -MMD -MP -c $< -o $@

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# Rebuilt when MPI=0/1 changes (the stamp holds the flags).
$(BUILD)/obj/src/train/dist.o: src/train/dist.c $(BUILD)/mpi-flags
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(MPI_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/mpi-flags: FORCE
	@mkdir -p $(dir $@)
	@echo '$(MPI_CFLAGS)' | cmp -s - $@ || echo '$(MPI_CFLAGS)' >$@
FORCE:

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(CLI): $(TOOL_OBJ) $(LIB)
	$(CC) $(LDFLAGS) $(TOOL_OBJ) $(LIB) $(LDLIBS) -o $@

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_UOBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $< $(TEST_UOBJ) $(LIB) $(LDLIBS) -lcmocka -o $@

$(CORE_LIB): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# --whole-archive: every object of src/core must resolve within src/core and the C runtime
# (libm, OpenMP), not only the ones the test calls.
$(BUILD)/core-tests/%: $(BUILD)/obj/tests/%.o $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $< -Wl,--whole-archive $(CORE_LIB) -Wl,--no-whole-archive -lm -lcmocka -o $@

core: $(CORE_TEST)

# The layer check as a test program of tests/run.sh: a two-line script calling
# tests/check_layers.sh on this build's objects.
$(LAYERS): tests/check_layers.sh $(LIB_OBJ) $(TOOL_OBJ) $(CORE_TEST)
	@mkdir -p $(dir $@)
	printf '#!/bin/sh\nexec sh "%s" "%s"\n' $(abspath tests/check_layers.sh) $(abspath $(BUILD)) >$@
	chmod +x $@

check-layers: $(LAYERS)
	$(LAYERS)

# libhalfs.so, for the Python package (python/halfs loads it with ctypes): the library's sources
# compiled a second time with -fPIC by a sub-make into $(BUILD)/pic, so the objects of
# libhalfs.a, the CLI and the tests stay exactly as they are; the sub-make links
# $(BUILD)/pic/libhalfs.so and it is copied here when it changed.
ifeq ($(PIC),1)
$(BUILD)/libhalfs.so: $(LIB)
	$(CC) -shared $(LDFLAGS) -Wl,--whole-archive $(LIB) -Wl,--no-whole-archive $(LDLIBS) -o $@
else
$(BUILD)/libhalfs.so: FORCE
	$(MAKE) --no-print-directory BUILD=$(BUILD)/pic PIC=1 $(BUILD)/pic/libhalfs.so
	cmp -s $(BUILD)/pic/libhalfs.so $@ || cp $(BUILD)/pic/libhalfs.so $@
endif
FORCE:

# The Python package's pytest suite (python/tests) as a test program of tests/run.sh, like the
# layer check: tests/python_tests.sh prints cmocka-style counts, skipped without numpy/pytest.
PYTEST_T := $(BUILD)/tests/test_python
$(PYTEST_T): tests/python_tests.sh $(BUILD)/libhalfs.so $(CLI)
	@mkdir -p $(dir $@)
	printf '#!/bin/sh\nexec sh "%s" "%s" "%s"\n' $(abspath tests/python_tests.sh) $(abspath $(BUILD)/libhalfs.so) $(abspath $(CLI)) >$@
	chmod +x $@

# The data-parallel tests (tests/test_mpi.sh, under mpirun) as a test program of tests/run.sh.
MPITEST := $(BUILD)/tests/test_mpi
$(MPITEST): tests/test_mpi.sh
	@mkdir -p $(dir $@)
	printf '#!/bin/sh\nexec sh "%s"\n' $(abspath tests/test_mpi.sh) >$@
	chmod +x $@

tests: $(TEST_BIN) $(LAYERS) $(MPITEST)

# The tests find the CLI through HALFS_BIN and scratch space through HALFS_TMP.
test: $(CLI) $(TEST_BIN) $(LAYERS) $(MPITEST) $(PYTEST_T)
	HALFS_BIN=$(abspath $(CLI)) sh tests/run.sh $(BUILD)/tests

clean:
	rm -rf build build-san

-include $(LIB_OBJ:.o=.d) $(TOOL_OBJ:.o=.d) $(TEST_BIN:$(BUILD)/tests/%=$(BUILD)/obj/tests/%.d) $(TEST_UOBJ:.o=.d)
