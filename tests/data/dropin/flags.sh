#!/bin/sh
# A second script written for the in-toto 3.1.0 command line: a layout signed by two keys
# (in-toto-sign -a, --verify), --base-path with --lstrip-paths, --exclude, -d/--link-dir,
# DSSE links from in-toto-run, in-toto-record and in-toto-mock, a mock link signed afterwards
# (and with -o), in-toto-record with --base-path, --lstrip-paths and --exclude, -q. Run from a directory holding keys/ and project/ (root.layout, src/, vendor/lib/); exit
# codes go to ../codes. With TAMPER=1 the build output is replaced before it is signed off.
set -u
cd project
r() { "$@"; echo "$? $1 $2" >> ../codes; }
mkdir -p ../links out

r in-toto-sign -f root.layout -k ../keys/owner
r in-toto-sign -f root.layout -k ../keys/alice -a
r in-toto-sign -f root.layout --verify -k ../keys/owner.pub ../keys/alice.pub
r in-toto-run -n fetch -q --base-path vendor -p lib --lstrip-paths lib/ -d ../links --signing-key ../keys/bob -- true
r in-toto-run -n build --use-dsse -m src --exclude '*.tmp' -p src out -d ../links --signing-key ../keys/carl \
    -- sh -c 'cat src/*.c > out/app; echo scratch > src/junk.tmp'
if [ "${TAMPER:-0}" = 1 ]; then
    echo 'backdoor' > out/app
fi
r in-toto-record start -n sign-off --use-dsse -m out --signing-key ../keys/alice
r in-toto-record stop -n sign-off -p out -d ../links --signing-key ../keys/alice
r in-toto-mock -n probe --use-dsse -- ls src
r in-toto-sign -f probe.link -k ../keys/alice
r in-toto-sign -f probe.*.link --verify -k ../keys/alice.pub
r in-toto-sign -f probe.*.link --verify -k ../keys/bob.pub
r in-toto-sign -f probe.link -k ../keys/bob -o ../probe-by-bob.link
r in-toto-record start -n extra --base-path src --lstrip-paths a --exclude 'b*' -m . --signing-key ../keys/bob
r in-toto-record stop -n extra --base-path src --exclude 'b*' -p . -d ../links --signing-key ../keys/bob
r in-toto-verify -l root.layout --verification-keys ../keys/owner.pub ../keys/alice.pub --link-dir ../links --inspection-timeout 5
r in-toto-verify -l root.layout --verification-keys ../keys/owner.pub
exit 0
