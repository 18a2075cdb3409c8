# pg_keeper: a C shim (bgworker/) loaded by shared_preload_libraries, and a
# Go library (pg_keeper_go.so) that the shim's worker loads. Build with
#   make USE_PGXS=1 && make USE_PGXS=1 install
# or build a Debian package into dist/ (scripts/deb.sh) with
#   make deb
# PG_CONFIG=/path/to/pg_config selects another PostgreSQL installation.

MODULE_big = pg_keeper
OBJS = bgworker/pg_keeper.o bgworker/guc.o bgworker/worker.o bgworker/bridge.o bgworker/shared.o bgworker/fence.o bgworker/sqlfuncs.o bgworker/request.o bgworker/compat.o bgworker/stopping.o
PGFILEDESC = "pg_keeper - two-node failover inside PostgreSQL"

EXTENSION = pg_keeper
DATA = sql/pg_keeper--1.0.sql

GO ?= go
GOLIB = pg_keeper_go.so
GO_SOURCES = $(shell find keeper pgext -name '*.go' ! -name '*_test.go') go.mod go.sum bgworker/pg_keeper_bridge.h
# asyncpreemptoff: Go's preemption signal (SIGURG) is the one PostgreSQL 15
# uses to wake latches. -s -w: no symbol tables, a third smaller.
GO_LDFLAGS = -s -w -X=runtime.godebugDefault=asyncpreemptoff=1

EXTRA_CLEAN = $(GOLIB) pg_keeper_go.h

# make deb needs no USE_PGXS=1: it is a PGXS build whatever is asked.
ifneq ($(filter deb,$(MAKECMDGOALS)),)
USE_PGXS ?= 1
endif

ifdef USE_PGXS
PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
else ifneq ($(MAKECMDGOALS),bench)
$(error pg_keeper builds only against an installed server: use make USE_PGXS=1)
endif

all: $(GOLIB)

$(OBJS): bgworker/pg_keeper.h bgworker/pg_keeper_bridge.h bgworker/compat.h

$(GOLIB): $(GO_SOURCES)
	CGO_ENABLED=1 $(GO) build -buildmode=c-shared -trimpath -ldflags '$(GO_LDFLAGS)' -o $@ ./pgext/lib

install: install-golib
install-golib: $(GOLIB)
	$(MKDIR_P) '$(DESTDIR)$(pkglibdir)'
	$(INSTALL_SHLIB) $(GOLIB) '$(DESTDIR)$(pkglibdir)/$(GOLIB)'

uninstall: uninstall-golib
uninstall-golib:
	rm -f '$(DESTDIR)$(pkglibdir)/$(GOLIB)'

.PHONY: install-golib uninstall-golib

# dist/postgresql-NN-pg-keeper_VERSION_ARCH.deb for the server of
# $(PG_CONFIG), rebuilt from clean. dist/ outlives make clean, so that
# packages for several majors can be built one after the other.
deb:
	MAKE='$(MAKE)' PG_CONFIG='$(PG_CONFIG)' scripts/deb.sh

distclean maintainer-clean: clean-dist
clean-dist:
	rm -rf dist

.PHONY: deb clean-dist

# Failover, commit stall, sync restore, worker RSS/threads/CPU on real
# servers (needs root and an installed pg_keeper). Prints figures only.
bench:
	$(GO) test ./test -run '^$$' -bench . -benchtime 5x -timeout 30m
.PHONY: bench
