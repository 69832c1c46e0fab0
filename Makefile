# matviews: the canonical build (PGXS), plus the project's two commands, `make demo` and `make test`.
#
# The PGXS include needs the PostgreSQL server headers, which a fresh machine does not have.
# `make demo` and `make test` therefore first run scripts/setup.sh (plain shell, no PGXS), then
# call make again, which now finds pg_config and includes PGXS.

PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

EXTENSION = matviews
MODULE_big = matviews
DATA = extension/matviews--0.1.sql extension/matviews--0.1--0.2.sql extension/matviews--0.2--0.3.sql \
       extension/matviews--0.3--0.4.sql

SRCS := $(sort $(wildcard src/*.cpp src/*/*.cpp))
OBJS = $(SRCS:.cpp=.o)

# pg_regress suites (sql/ and expected/); each file is one test, run in this order.
REGRESS = $(shell cat sql/schedule.txt 2>/dev/null)
REGRESS_OPTS = --inputdir=. --dbname=contrib_regression --load-extension=matviews


# PostgreSQL's headers are system headers to us, so -Werror applies to the project's code only.
PG_INCLUDE_SERVER := $(shell $(PG_CONFIG) --includedir-server 2>/dev/null)
PG_CPPFLAGS = -isystem $(PG_INCLUDE_SERVER) -Isrc
PG_CXXFLAGS = -std=c++17 -fPIC -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
              -fno-omit-frame-pointer -MMD -MP $(if $(WERROR),-Werror)
SHLIB_LINK += -lfmt -lstdc++

# Debian's server is built with LLVM JIT. Its bitcode step ignores PG_CXXFLAGS and would compile
# our C++17 without -std; inlining C++ into JIT-compiled queries buys nothing, so skip bitcode.
override with_llvm = no

SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: demo test setup unit isolation tap lint format check-format deb test-deb

EXTRA_CLEAN = $(OBJS:.o=.d) results regression.diffs regression.out build test/isolation/output_iso

ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
-include $(OBJS:.o=.d)
endif

setup:
	@bash scripts/setup.sh

demo: setup
	@$(MAKE) --no-print-directory -s all
	@$(SUDO) $(MAKE) --no-print-directory -s install
	@bash scripts/demo.sh

test: setup
	@$(MAKE) --no-print-directory WERROR=1 all
	@$(SUDO) $(MAKE) --no-print-directory WERROR=1 install
	@bash scripts/run-tests.sh

# The Debian package postgresql-15-matviews (debian/, scripts/deb.sh): build it into build/deb/,
# or build, install and test it (the regress suite against the installed package).
deb:
	@bash scripts/setup.sh deb
	@bash scripts/deb.sh build

test-deb:
	@bash scripts/setup.sh deb
	@bash scripts/deb.sh test

format:
	clang-format -i $(SRCS) $(wildcard src/*.hpp src/*/*.hpp test/unit/*.cpp bench/*.cpp)

check-format:
	clang-format --dry-run -Werror $(SRCS) $(wildcard src/*.hpp src/*/*.hpp test/unit/*.cpp)
