#!/usr/bin/env bash
# Regenerates ui/DroidSansFallbackSubset.ttf, the CJK font the desktop app
# bundles, from Debian's fonts-droid-fallback: DroidSansFallbackFull.ttf
# (4 MB, 28,600 characters) cut down to what Chinese offices write. fyne
# parses the bundled font into memory once per text style it draws (regular
# and bold at least), at about four bytes a byte of font, so the whole font
# cost some 33 MB of the window's memory; this subset costs 10 (issue #4).
#
# Kept: the space (fyne takes the line height from the font that has it),
# every character of GB2312 (6,763 hanzi, CJK and full-width
# punctuation, kana, Greek, Cyrillic, box drawing), all of the CJK
# punctuation and full-width forms blocks, the 8,105 hanzi of the
# 通用规范汉字表 (China's 2013 list of characters in general use, which
# has the name characters GB2312 lacks, such as 堃 and 喆; Unihan's kTGH,
# from Debian's unicode-data), and every non-ASCII character in a string
# literal under ui/ (the settings' "CP932 (日本語)"). Latin comes from
# fyne's own Noto Sans, which has it; Droid Sans Fallback has none. A
# character outside the subset (traditional-only forms, rare hanzi) falls
# back to the system's fonts, as fyne does for any character the theme
# lacks. Output is the same for the same inputs.
#
#   scripts/cjk-font.sh
#
# Needs fonts-droid-fallback, fonttools (pyftsubset), unicode-data and
# python3; as root it installs the missing ones with apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
src=/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf
unihan=/usr/share/unicode/Unihan_OtherMappings.txt.bz2
out=ui/DroidSansFallbackSubset.ttf

scripts/debian-deps.sh fonts-droid-fallback fonttools unicode-data python3

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# One code point a line (U+XXXX), sorted. Debian's python3, which has only
# the standard library here; pyftsubset runs under it too.
/usr/bin/python3 - "$unihan" ui/*.go >"$tmp/unicodes" <<'EOF'
import bz2, re, sys

# The space and no-break space: fyne takes a line's height from the font
# of its space. CJK symbols and punctuation, full- and half-width forms:
# whole blocks.
cps = {0x20, 0xA0} | set(range(0x3000, 0x3040)) | set(range(0xFF00, 0xFFF0))
# GB2312: every two-byte EUC-CN code (rows 0xA1-0xF7, cells 0xA1-0xFE).
for hi in range(0xA1, 0xF8):
    for lo in range(0xA1, 0xFF):
        try:
            cps.update(map(ord, bytes([hi, lo]).decode("gb2312")))
        except UnicodeDecodeError:
            pass
# 通用规范汉字表: Unihan's kTGH field ("U+4E00<TAB>kTGH<TAB>2013:1").
with bz2.open(sys.argv[1], "rt", encoding="utf-8") as f:
    for line in f:
        field = line.rstrip("\n").split("\t")
        if len(field) == 3 and field[1] == "kTGH":
            cps.add(int(field[0][2:], 16))
# The UI's own strings, tests aside.
literal = re.compile(r'"(?:[^"\\\n]|\\.)*"|`[^`]*`')
for path in sys.argv[2:]:
    if path.endswith("_test.go"):
        continue
    with open(path, encoding="utf-8") as f:
        for s in literal.findall(f.read()):
            cps.update(ord(c) for c in s if ord(c) > 0x7F)
for cp in sorted(cps):
    print("U+%04X" % cp)
EOF
pyftsubset "$src" --unicodes-file="$tmp/unicodes" --output-file="$tmp/out.ttf"
mv "$tmp/out.ttf" "$out"
echo "cjk-font: $out, $(wc -c <"$out") bytes, from $(wc -l <"$tmp/unicodes") code points asked for"
