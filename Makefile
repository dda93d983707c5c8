# wf — one Makefile for the whole tree.
#   make                      build bin/wfctl bin/wf-engine bin/wf-executor
#   make SANITIZE=address,undefined test
#   make test | demo | deps | install | format | format-check | fuzz | bench
.DEFAULT_GOAL := all
.SUFFIXES:

CC       ?= cc
PREFIX   ?= /usr/local
DESTDIR  ?=
SANITIZE ?=
OPT      ?= -O2
VERSION  := 0.1.0

PKGS     := yaml-0.1 libpq libzmq libcurl jansson libmicrohttpd libsodium
FLAVOUR  := $(if $(SANITIZE),san,rel)
B        := build/$(FLAVOUR)

WARN     := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wformat=2 -Wvla
CPPFLAGS += -D_GNU_SOURCE -DWF_VERSION=\"$(VERSION)\" -DWF_DATADIR=\"$(PREFIX)/share/wf\" -I. -Icommon -Idsl \
            -include common/banned.h \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
            -isystem $(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
CFLAGS   += -std=c11 $(OPT) -g $(WARN) -MMD -MP -fno-omit-frame-pointer
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lyaml -lpq -lzmq -lcurl -ljansson -lmicrohttpd -lsodium) -lpthread -lm
ifneq ($(SANITIZE),)
CFLAGS   += -fsanitize=$(SANITIZE) -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=$(SANITIZE)
endif

COMMON_SRC   := $(wildcard common/*.c)
DSL_SRC      := $(wildcard dsl/*.c)
ENGINE_SRC   := $(filter-out engine/main.c,$(wildcard engine/*.c))
EXECUTOR_SRC := $(filter-out executor/main.c,$(wildcard executor/*.c))
CLI_SRC      := $(filter-out cli/main.c,$(wildcard cli/*.c))
UNIT_SRC     := $(wildcard tests/unit/*/test_*.c)

obj = $(patsubst %.c,$(B)/%.o,$(1))

LIB_COMMON   := $(B)/libwfcommon.a
LIB_DSL      := $(B)/libwfdsl.a
LIB_ENGINE   := $(B)/libwfengine.a
LIB_EXECUTOR := $(B)/libwfexecutor.a
LIB_CLI      := $(B)/libwfcli.a
ALL_LIBS     := $(LIB_CLI) $(LIB_ENGINE) $(LIB_EXECUTOR) $(LIB_DSL) $(LIB_COMMON)

BINS      := bin/wfctl bin/wf-engine bin/wf-executor
UNIT_BINS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))

# Binaries are shared by both flavours: relink when the flavour changes.
STAMP := build/.flavour-$(FLAVOUR)
$(STAMP):
	@mkdir -p build && rm -f build/.flavour-* && touch $@

all: $(BINS)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(LIB_COMMON):   $(call obj,$(COMMON_SRC))
$(LIB_DSL):      $(call obj,$(DSL_SRC))
$(LIB_ENGINE):   $(call obj,$(ENGINE_SRC)) $(B)/gen/migrations.o
$(LIB_EXECUTOR): $(call obj,$(EXECUTOR_SRC))
$(LIB_CLI):      $(call obj,$(CLI_SRC))
$(B)/%.a:
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^ $(if $^,,$(B)/empty.o)

$(B)/empty.o:
	@mkdir -p $(B) && echo 'typedef int wf_empty_unit;' > $(B)/empty.c && $(CC) -c $(B)/empty.c -o $@
$(ALL_LIBS): | $(B)/empty.o

# Migrations are compiled into the binaries, so a binary knows exactly which
# schema versions it understands. The directory is a prerequisite too: its
# time changes when a migration is removed or renamed, which the files left
# would not show.
$(B)/gen/migrations.c: migrations $(sort $(wildcard migrations/*.sql)) scripts/embed-migrations.sh
	@mkdir -p $(dir $@)
	scripts/embed-migrations.sh $(sort $(wildcard migrations/*.sql)) > $@.tmp && mv $@.tmp $@
$(B)/gen/migrations.o: $(B)/gen/migrations.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

bin/wf-engine:   $(call obj,engine/main.c) $(LIB_ENGINE) $(LIB_DSL) $(LIB_COMMON) $(STAMP)
bin/wf-executor: $(call obj,executor/main.c) $(LIB_EXECUTOR) $(LIB_DSL) $(LIB_COMMON) $(STAMP)
bin/wfctl:       $(call obj,cli/main.c) $(LIB_CLI) $(LIB_ENGINE) $(LIB_DSL) $(LIB_COMMON) $(STAMP)
bin/%:
	@mkdir -p bin
	$(CC) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(LDLIBS)

# A unit test sees its component's headers, and links its component's library
# and what that depends on.
$(B)/tests/unit/engine/%.o: CPPFLAGS += -iquote engine
$(B)/tests/unit/executor/%.o: CPPFLAGS += -iquote executor
$(B)/tests/unit/cli/%.o: CPPFLAGS += -iquote cli -iquote engine
# A unit test links its component's library and what that depends on.
TEST_LIBS_common   := $(LIB_COMMON)
TEST_LIBS_dsl      := $(LIB_DSL) $(LIB_COMMON)
TEST_LIBS_engine   := $(LIB_ENGINE) $(LIB_DSL) $(LIB_COMMON)
TEST_LIBS_executor := $(LIB_EXECUTOR) $(LIB_DSL) $(LIB_COMMON)
TEST_LIBS_cli      := $(LIB_CLI) $(LIB_ENGINE) $(LIB_DSL) $(LIB_COMMON)
define unit_rule
$(B)/tests/$(1)/%: $(B)/tests/unit/$(1)/%.o $$(TEST_LIBS_$(1)) $(STAMP)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$(filter %.o %.a,$$^) $$(LDLIBS) -lcriterion
endef
$(foreach c,common dsl engine executor cli,$(eval $(call unit_rule,$(c))))

unit: $(UNIT_BINS)

# ---------------------------------------------------------------- commands
deps:
	@scripts/deps.sh

test: deps
	@$(MAKE) --no-print-directory all unit
	@B=$(B) tests/run.sh

unit-test: all unit
	@B=$(B) SUITES=unit tests/run.sh

# The unit tests under valgrind: any error or definite leak fails the test.
VALGRIND := valgrind -q --trace-children=yes --trace-children-skip=/bin/*,/usr/bin/*,/usr/sbin/* \
	--leak-check=full --errors-for-leak-kinds=definite \
	--error-exitcode=99 --suppressions=tests/valgrind.supp
valgrind: all unit
	@B=$(B) SUITES=unit WRAP="$(VALGRIND)" tests/run.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh

chaos: deps all
	@B=$(B) WF_CHAOS=long TEST_TIMEOUT=2400 SUITES=integration ONLY=chaos tests/run.sh

bench: deps all
	@bench/run.sh

FUZZ_TIME ?= 30
fuzz:
	@tests/fuzz/run.sh $(FUZZ_TIME)

SRC_ALL := $(wildcard common/*.[ch] dsl/*.[ch] engine/*.[ch] executor/*.[ch] cli/*.[ch] tests/unit/*/*.[ch] tests/fuzz/*.[ch])
format:
	clang-format -i $(SRC_ALL)
format-check:
	clang-format --dry-run -Werror $(SRC_ALL)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/wf/migrations $(DESTDIR)$(PREFIX)/share/wf/web
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 migrations/*.sql $(DESTDIR)$(PREFIX)/share/wf/migrations/
	cp -R web/. $(DESTDIR)$(PREFIX)/share/wf/web/
	@if [ -d examples ]; then install -d $(DESTDIR)$(PREFIX)/share/doc/wf/examples && cp -R examples/. $(DESTDIR)$(PREFIX)/share/doc/wf/examples/; fi
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/wf/systemd
	install -m 644 contrib/wfctl.bash-completion $(DESTDIR)$(PREFIX)/share/bash-completion/completions/wfctl
	install -m 644 contrib/systemd/*.service $(DESTDIR)$(PREFIX)/share/wf/systemd/

clean:
	rm -rf build bin

.PHONY: all unit deps test unit-test valgrind demo chaos bench fuzz format format-check install clean
.PRECIOUS: $(B)/%.o

-include $(shell find build -name '*.d' 2>/dev/null)
