# BulletDrop: build the nginx module, run a local stack, run the tests.
#
#   make          build build/ngx_http_bulletdrop_module.so
#   make deps     install the Debian packages that are missing
#   make www      the web app and the API docs: npm ci and the bundle,
#                 into www/dist/
#   make run      deps, build, start PostgreSQL + nginx in the run dir
#   make stop     stop a stack started in the background
#   make migrate  apply sql/*.sql to the run dir's database
#                 (or to $BULLETDROP_DB when set)
#   make fsck     list upload rows without files and files without rows
#   make backup   bin/bulletdrop-backup of the run dir's stack, into
#                 $BULLETDROP_BACKUP_ROOT (default <run dir>/backups)
#   make restore BACKUP=dir [FORCE=1]
#                 bin/bulletdrop-restore of that backup into the run dir
#                 (an empty one, unless FORCE=1)
#   make test     deps, build, prove -r t/
#   make test-asan  the same with AddressSanitizer and UBSan: the module
#                 built into build/asan/, Debian's nginx run with the
#                 sanitizer runtimes preloaded
#   make deb      the Debian package, libnginx-mod-http-bulletdrop, into
#                 build/ (debian/: debhelper and dh_nginx)
#   make clean    remove the build trees

SHELL      := /bin/bash
TOP        := $(CURDIR)

# SANITIZE=address,undefined builds an instrumented module, by default in
# a tree of its own (make test-asan does this)
SANITIZE   ?=
ASAN_BUILD := $(TOP)/build/asan
ifneq ($(SANITIZE),)
BUILD      ?= $(ASAN_BUILD)
endif
BUILD      ?= $(TOP)/build
NGINX_SRC  ?= /usr/share/nginx/src
NGX_BUILD  := $(BUILD)/nginx
MODULE     := $(BUILD)/ngx_http_bulletdrop_module.so
SOURCES    := ngx_http_bulletdrop_module.c config \
              $(wildcard src/*.c) $(wildcard src/*.h)
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
# V=1 shows every command of the build; quiet otherwise (errors and
# warnings still show)
Q          := $(if $(filter 1,$(V)),,@)

# Built the way Debian builds nginx itself (dpkg-buildflags), so the module
# is hardened like the binary that loads it.
CC_OPT     := -g -O2 -fstack-protector-strong -Wformat \
              -Werror=format-security -fPIC -D_FORTIFY_SOURCE=2
LD_OPT     := -Wl,-z,relro -Wl,-z,now -fPIC

# Instrumented: without _FORTIFY_SOURCE, whose __memcpy_chk and friends
# run inside libc where ASan's interceptors never see them.
ifneq ($(SANITIZE),)
CC_OPT     := -g -O2 -fstack-protector-strong -Wformat \
              -Werror=format-security -fPIC \
              -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
LD_OPT     += -fsanitize=$(SANITIZE)
endif

# The sanitizer runtimes of this gcc, which an uninstrumented nginx must
# load before anything else (LD_PRELOAD) to host an instrumented module.
SAN_RUNTIMES = $(shell for l in libasan.so libubsan.so; do \
                   f=$$($(CC) -print-file-name=$$l); \
                   [ -f "$$f" ] && readlink -f "$$f"; \
               done | paste -sd:)

# gcc, make and pkg-config build the module; perl (prove and the core
# modules), curl, openssl (a throwaway certificate) and strace (the order
# of a commit's system calls) serve the tests, and so do chromium and a
# font for it (the web app's tests drive it); prometheus (promtool checks
# the metrics, and its server scrapes them in t/094) and fail2ban (t/093
# runs the shipped filter and jail, nginx-conf/fail2ban/, in a private
# server).  rclone pushes backups to S3-compatible storage
# (bin/bulletdrop-backup --rclone-remote); t/092 pushes to a
# local-filesystem remote with it.  pg_dump and pg_restore come with
# postgresql (postgresql-client).  debhelper (with nginx-dev's dh_nginx),
# dpkg-dev and fakeroot build the Debian package (make deb); lintian checks
# it and t/096 installs it, which needs what it depends on: the
# postgresql-client metapackage, which postgresql does not pull in.  Ceph's
# monitor, OSD, tools and radosgw are the real S3 server the tests of S3
# storage run on loopback (t/lib/BulletDrop/RGW.pm; RGW is what
# DigitalOcean Spaces is built on; ~350 MB); the cluster runs without a
# manager, so ceph-mgr is not among them.
DEB_PACKAGES := nginx nginx-dev libpq-dev libjansson-dev libjwt-dev \
                libssl-dev postgresql perl curl gcc make pkg-config openssl \
                strace chromium fonts-dejavu-core prometheus fail2ban rclone \
                debhelper dpkg-dev fakeroot lintian postgresql-client jq \
                ceph-mon ceph-osd ceph-common radosgw

# Node.js builds the web app.  Debian's nodejs and npm are installed only
# when there is no node and npm at all: one from elsewhere (NodeSource's
# nodejs carries its own npm) is used as it is.
NODE_PACKAGES := $(shell command -v node >/dev/null 2>&1 \
                         && command -v npm >/dev/null 2>&1 || echo nodejs npm)

# the web app's sources; its build is redone when one of them changes
WWW_SOURCES := $(shell find www -path www/node_modules -prune \
                            -o -path www/dist -prune -o -path www/test -prune \
                            -o -type f -print 2>/dev/null)

SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STACK      := perl -I$(TOP)/t/lib -MBulletDrop::Stack \
              -e 'BulletDrop::Stack::main(@ARGV)' --

.PHONY: all deps www run stop migrate fsck backup restore test test-asan \
        deb clean FORCE

all: $(MODULE)

deps:
	@missing=""; \
	for p in $(DEB_PACKAGES) $(NODE_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
	        | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "deps: installing$$missing"; \
	    $(SUDO) apt-get update -q && \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	        apt-get install -y -q --no-install-recommends $$missing; \
	fi

# nginx's configure runs once per change of the addon's file list or of the
# distro flags; after that only our objects are recompiled.
$(BUILD)/sources.list: FORCE
	@mkdir -p $(BUILD)
	@ls ngx_http_bulletdrop_module.c src/*.c src/*.h 2>/dev/null \
	    | sort > $@.new
	@if cmp -s $@.new $@; then rm -f $@.new; else mv $@.new $@; fi

$(NGX_BUILD)/objs/Makefile: config $(wildcard $(NGINX_SRC)/conf_flags) \
                            $(BUILD)/sources.list
	@test -f $(NGINX_SRC)/conf_flags \
	    || { echo "no $(NGINX_SRC): run 'make deps'" >&2; exit 1; }
	@echo "configuring a copy of nginx's sources in $(NGX_BUILD)"
	$(Q)rm -rf $(NGX_BUILD)
	$(Q)cp -a $(NGINX_SRC) $(NGX_BUILD)
	$(Q)cd $(NGX_BUILD) && source ./conf_flags && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --with-cc-opt='$(CC_OPT)' --with-ld-opt='$(LD_OPT)' \
	        --add-dynamic-module=$(TOP) > configure.log 2>&1 \
	    || { tail -n 30 configure.log; exit 1; }

$(MODULE): $(NGX_BUILD)/objs/Makefile $(SOURCES)
	@echo "building $@"
	$(Q)$(MAKE) $(if $(Q),-s) -C $(NGX_BUILD) -f objs/Makefile -j$(JOBS) \
	    modules
	@# a new file, not the one a running nginx has mapped
	$(Q)cp $(NGX_BUILD)/objs/ngx_http_bulletdrop_module.so $@.new
	$(Q)mv -f $@.new $@

# npm ci, once per change of the lock file; the bundle, once per change of
# a source or of the API's document (docs/openapi.yaml, served as
# /api/openapi.json and rendered at /docs).  Nothing is fetched at run
# time: nginx serves www/dist/.
www: www/dist/index.html

www/node_modules/.installed: www/package.json www/package-lock.json
	@echo "installing the web app's npm packages (npm ci)"
	$(Q)cd www && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

www/dist/index.html: www/node_modules/.installed $(WWW_SOURCES) \
                     docs/openapi.yaml
	@echo "bundling the web app into www/dist"
	$(Q)cd www && npm run --silent build

run: deps all www
	@$(STACK) run

stop:
	@$(STACK) stop

migrate:
	@$(STACK) migrate

fsck:
	@$(STACK) fsck

backup:
	@$(STACK) backup

# BACKUP and FORCE reach the stack through the environment
restore:
	@BACKUP='$(BACKUP)' FORCE='$(FORCE)' $(STACK) restore

test: deps all www
	prove -r t/

# The whole suite against the instrumented module.  The harness
# (t/lib/BulletDrop/Nginx.pm) gives each nginx it starts the runtimes in
# BULLETDROP_PRELOAD and a sanitizer log dir in its prefix, and fails a
# test file whose nginx left a report there.  BUILD and SANITIZE in the
# environment keep a `make run` started by a test on this tree.
test-asan: deps www
	@$(MAKE) --no-print-directory SANITIZE=address,undefined \
	    BUILD=$(ASAN_BUILD) all
	@rt='$(SAN_RUNTIMES)'; [[ "$$rt" == *libasan*:*libubsan* ]] \
	    || { echo "test-asan: no libasan.so/libubsan.so for $(CC)" >&2; \
	         exit 1; }
	BUILD=$(ASAN_BUILD) SANITIZE=address,undefined \
	BULLETDROP_MODULE=$(ASAN_BUILD)/ngx_http_bulletdrop_module.so \
	BULLETDROP_PRELOAD='$(SAN_RUNTIMES)' \
	    prove -r t/

# The Debian package.  dpkg-buildpackage writes its output next to the
# tree it builds, so it builds a copy of this one (the files git tracks,
# as they are in the work tree, and www/dist) in build/deb/, and the .deb,
# its debug symbols, .buildinfo and .changes are moved into build/.  The
# package's version is the module's, and debian/changelog must say it.
DEB_DIR     := $(TOP)/build/deb
DEB_VERSION := $(shell sed -n \
                   's/^\#define NGX_HTTP_BULLETDROP_VERSION *"\(.*\)"$$/\1/p' \
                   src/ngx_http_bulletdrop.h)

deb: www
	@v=$$(dpkg-parsechangelog -S Version); [ "$$v" = "$(DEB_VERSION)" ] \
	    || { echo "deb: debian/changelog is at $$v, the module at" \
	              "$(DEB_VERSION): add an entry (dch -v $(DEB_VERSION))" >&2; \
	         exit 1; }
	$(Q)rm -rf $(DEB_DIR)
	$(Q)mkdir -p $(DEB_DIR)/src
	$(Q)git ls-files -z | while IFS= read -r -d '' f; do \
	        [ -e "$$f" ] && printf '%s\0' "$$f"; done \
	    | tar --null -T - -cf - | tar -xf - -C $(DEB_DIR)/src
	$(Q)cp -a www/dist $(DEB_DIR)/src/www/
	@echo "building the Debian package in $(DEB_DIR)"
	$(Q)cd $(DEB_DIR)/src && dpkg-buildpackage -b --no-sign \
	    > $(DEB_DIR)/build.log 2>&1 \
	    || { tail -n 40 $(DEB_DIR)/build.log; \
	         echo "deb: dpkg-buildpackage failed; see $(DEB_DIR)/build.log" >&2; \
	         exit 1; }
	$(Q)mv $(DEB_DIR)/*.deb $(DEB_DIR)/*.buildinfo $(DEB_DIR)/*.changes \
	    $(TOP)/build/
	@ls $(TOP)/build/*_$(DEB_VERSION)_*.deb

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) www/dist

FORCE:
