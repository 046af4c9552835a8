"""Real GRUB 2 (Debian's grub-install, i386-pc, SeaBIOS) against guestboot, case by case.

Each case is a grub.cfg (and maybe a grubenv) on the shared layout of realboot/grub.py.
Every case: guestboot's choice equals the golden file (what real GRUB booted when it was
recorded). Cases marked ``ci`` also boot real GRUB in this run: its answer must equal
guestboot's and the golden file's, and the grubenv the boot left must equal the recorded
one. Those are the cases grub-emu cannot show: what a boot writes back (next_entry,
savedefault), search across partitions, device names, fallback after a failed boot.
Every config writes GRUB's menu to the serial port so that its "Booting `TITLE'" names
the entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest

from prereq import host_grub_version

from . import grub
from .grub import FAT_UUID, OTHER_VERSION, ROOT_UUID, SERIAL
from .harness import (DiskImage, GrubEnv, IsoImage, Kernel, Marker, Payload, Text, cached_image, check_boot,
                      check_recorded, mode)

pytestmark = pytest.mark.slow

V10, V9, V8 = grub.VERSIONS
HEAD = SERIAL + "set timeout=0\n"


@dataclass(frozen=True)
class Case:
    name: str
    note: str  # what the case shows
    config: str
    env: dict[str, str] | None = None
    ci: bool = False  # booted in every run (else only with GUESTBOOT_REALBOOT=all/record)
    watch: tuple[str, ...] = ()  # grubenv variables whose value after the boot is recorded
    extra: dict = field(default_factory=dict)
    defaults: str | None = None  # set: ``config`` is what grub-mkconfig writes from this /etc/default/grub
    gap: str | None = None  # set: guestboot does not do this yet (its checks are strict expected failures)
    table: str = "dos"  # "gpt": the layout on GPT behind a BIOS boot partition (grub.layout)


def simple(title: str, version: str, *, opts: str = "", id: str | None = None, pre: str = "", indent: str = "") -> str:
    """A plain menuentry booting one of msdos1's kernels with its initrd."""
    ident = f" --id {id}" if id else ""
    return (f"{indent}menuentry '{title}'{ident} {{\n{pre}"
            f"{indent}  linux /vmlinuz-{version} root=/dev/null {opts}\n"
            f"{indent}  initrd /initrd.img-{version}\n{indent}}}\n").replace(" \n", "\n")


FOUR = (simple("Debian 10", V10, opts="e=0", id="deb-10") + simple("Debian 9", V9, opts="e=1", id="deb-9")
        + simple("Debian 8", V8, opts="e=2", id="deb-8") + simple("Debian 10 again", V10, opts="e=3", id="deb-10b"))

NESTED = (simple("Debian", V10, opts="n=0", id="gnulinux-simple")
          + "submenu 'Advanced options' --id gnulinux-advanced {\n"
          + simple("Debian, with Linux 10", V10, opts="n=1.0", id="gnulinux-10", indent="  ")
          + simple("Debian, with Linux 9", V9, opts="n=1.1", id="gnulinux-9", indent="  ")
          + simple("Debian, with Linux 8", V8, opts="n=1.2", id="gnulinux-8", indent="  ")
          + "}\n")

# grub-mkconfig's 00_header (Debian 12) for grubenv: load it, honour next_entry once.
ENV_HEADER = """if [ -s $prefix/grubenv ]; then
  set have_grubenv=true
  load_env
fi
if [ "${next_entry}" ] ; then
   set default="${next_entry}"
   set next_entry=
   save_env next_entry
   set boot_once=true
else
   set default="${saved_entry}"
fi
function savedefault {
  if [ -z "${boot_once}" ]; then
    saved_entry="${chosen}"
    save_env saved_entry
  fi
}
"""

SAVING = (simple("Debian", V10, opts="s=0", id="gnulinux-simple", pre="  savedefault\n")
          + "submenu 'Advanced options' --id gnulinux-advanced {\n"
          + simple("Debian, with Linux 10", V10, opts="s=1.0", id="gnulinux-10", pre="    savedefault\n", indent="  ")
          + simple("Debian, with Linux 9", V9, opts="s=1.1", id="gnulinux-9", pre="    savedefault\n", indent="  ")
          + "}\n"
          + simple("Debian 8", V8, opts="s=2", id="gnulinux-8", pre="  savedefault\n"))

# /etc/default/grub as Debian's installer leaves it, with the serial terminal and no
# timeout; each mkconfig case adds its GRUB_DEFAULT (and GRUB_SAVEDEFAULT).
DEFAULTS = ('GRUB_TIMEOUT=0\nGRUB_DISTRIBUTOR=Debian\nGRUB_CMDLINE_LINUX_DEFAULT="quiet"\nGRUB_CMDLINE_LINUX=""\n'
            'GRUB_TERMINAL=serial\nGRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"\nGRUB_DISABLE_OS_PROBER=true\n')
ADVANCED = f"gnulinux-advanced-{ROOT_UUID}"


def advanced(version: str, kind: str = "advanced") -> str:
    """grub-mkconfig's id of a submenu entry (10_linux: gnulinux-VERSION-TYPE-UUID)."""
    return f"gnulinux-{version}-{kind}-{ROOT_UUID}"


CASES = [
    Case("mkconfig-default", "grub-mkconfig's config, GRUB_DEFAULT=0: the first entry, root=UUID=",
         "", defaults=DEFAULTS + "GRUB_DEFAULT=0\n"),
    Case("mkconfig-submenu-index", "grub-mkconfig's config, GRUB_DEFAULT='1>2': the submenu's third entry",
         "", defaults=DEFAULTS + "GRUB_DEFAULT='1>2'\n"),
    Case("mkconfig-submenu-titles", "grub-mkconfig's config, GRUB_DEFAULT a path of titles",
         "", defaults=DEFAULTS + "GRUB_DEFAULT='Advanced options for Debian GNU/Linux>"
         f"Debian GNU/Linux, with Linux {V8} (recovery mode)'\n"),
    Case("mkconfig-saved", "grub-mkconfig's GRUB_DEFAULT=saved and GRUB_SAVEDEFAULT=true; saved_entry as "
         "grub-set-default writes an id path; the boot saves $chosen",
         "", defaults=DEFAULTS + "GRUB_DEFAULT=saved\nGRUB_SAVEDEFAULT=true\n",
         env={"saved_entry": f"{ADVANCED}>{advanced(V8, 'recovery')}"}, ci=True, watch=("saved_entry", "next_entry")),
    Case("mkconfig-next-entry", "grub-mkconfig's GRUB_DEFAULT=saved with next_entry as grub-reboot writes it",
         "", defaults=DEFAULTS + "GRUB_DEFAULT=saved\nGRUB_SAVEDEFAULT=true\n",
         env={"saved_entry": "0", "next_entry": f"{ADVANCED}>{advanced(V9)}"}, watch=("saved_entry", "next_entry")),
    Case("default-index", "set default=2: the third top-level entry",
         HEAD + "set default=2\n" + FOUR),
    Case("default-id", "set default to a --id",
         HEAD + "set default=deb-8\n" + FOUR),
    Case("default-title", "set default to a title",
         HEAD + "set default='Debian 9'\n" + FOUR),
    Case("default-out-of-range", "a default index past the last entry: GRUB boots entry 0",
         HEAD + "set default=7\n" + FOUR),
    Case("default-unknown", "a default that names no entry: GRUB boots entry 0",
         HEAD + "set default='Debian 11'\n" + FOUR),
    Case("default-submenu-indices", "default '1>2': the submenu's third entry",
         HEAD + "set default='1>2'\n" + NESTED),
    Case("default-submenu-id-title", "default path of a submenu id and an entry title",
         HEAD + "set default='gnulinux-advanced>Debian, with Linux 9'\n" + NESTED),
    Case("saved-entry", "grub-mkconfig's GRUB_DEFAULT=saved: saved_entry '1>1' from grubenv; "
         "the entry's savedefault writes $chosen back",
         HEAD + ENV_HEADER + SAVING, env={"saved_entry": "1>1"}, watch=("saved_entry", "next_entry")),
    Case("next-entry", "next_entry boots once and is cleared by the boot; saved_entry stays",
         HEAD + ENV_HEADER + SAVING, env={"saved_entry": "gnulinux-simple", "next_entry": "gnulinux-8"},
         ci=True, watch=("saved_entry", "next_entry")),
    Case("savedefault-writes-chosen", "no saved_entry: entry 0 boots and savedefault saves its title",
         HEAD + ENV_HEADER + SAVING, env={}, watch=("saved_entry", "next_entry")),
    Case("variables", "variables in a body take their value at boot time, not when the entry "
         "was defined; quoted words keep their spaces",
         HEAD + "set kver=" + V9 + "\nset opts='quiet splash'\nset one='a b'\n"
         "menuentry \"vars $kver\" {\n  linux /vmlinuz-$kver root=/dev/null $opts \"spaced=$one\" x=${kver}y\n"
         "  initrd /initrd.img-${kver}\n}\nset kver=" + V8 + "\n"),
    Case("if-file-tests", "entries and the default chosen by [ -f ], [ -e ], [ -d ], [ -s ] on files",
         HEAD + f"if [ -f /vmlinuz-6.1.0-11-amd64 ]; then\n" + simple("never", V10, opts="t=never")
         + "fi\n" + simple("first", V10, opts="t=0")
         + "if [ -e (hd0,msdos2)/etc/only-on-root ]; then\n" + simple("on root", V9, opts="t=1") + "fi\n"
         + "if [ -d /grub -a -s /initrd.img-" + V8 + " ]; then\n  set default=1\nelse\n  set default=0\nfi\n"
         + "if ! [ -f /grub/nonesuch ]; then\n" + simple("not there", V8, opts="t=2") + "fi\n"),
    Case("functions", "entries made by a shell function; the body sees the entry's arguments",
         HEAD + "function kentry {\n  menuentry \"Kernel $1\" \"$1\" --id \"k-$1\" {\n"
         "    linux /vmlinuz-$2 root=/dev/null one=$1 two=$2\n    initrd /initrd.img-$2\n  }\n}\n"
         f"kentry {V10}\nkentry {V9}\nkentry {V8}\nset default=k-{V9}\n"),
    Case("search-uuid", "search --fs-uuid sets root to msdos2, whose kernel and initrd boot",
         HEAD + f"menuentry 'other root' {{\n  search --no-floppy --fs-uuid --set=root {ROOT_UUID}\n"
         f"  linux /boot/vmlinuz-{OTHER_VERSION} root=UUID={ROOT_UUID}\n  initrd /boot/initrd-other.img\n}}\n",
         ci=True),
    Case("search-label-fat", "search --label finds the FAT partition; initrds from two partitions",
         HEAD + f"menuentry 'two initrds' {{\n  search --no-floppy --label --set=fat GBFAT\n"
         f"  search --no-floppy --fs-uuid --set=fat2 {FAT_UUID}\n"
         f"  linux /vmlinuz-{V10} root=/dev/null fat=$fat fat2=$fat2\n"
         f"  initrd ($fat)/extra/extra.img /initrd.img-{V10}\n}}\n", ci=True),
    Case("device-names", "explicit device names: (hd0,2), (hd0,msdos3), a root set by name",
         HEAD + f"menuentry 'names' {{\n  set root=(hd0,2)\n  linux /boot/vmlinuz-{OTHER_VERSION} root=/dev/null\n"
         f"  initrd (hd0,msdos3)/extra/extra.img (hd0,1)/initrd.img-{V8}\n}}\n", ci=True),
    Case("search-file", "search --file finds the partition holding a file",
         HEAD + f"search --no-floppy --file --set=r /etc/only-on-root\nmenuentry \"found $r\" {{\n"
         f"  linux ($r)/boot/vmlinuz-{OTHER_VERSION} root=/dev/null r=$r\n  initrd ($r)/boot/initrd-other.img\n}}\n"),
    Case("wildcard-no-regexp", "for k in /vmlinuz-* without insmod regexp: i386-pc GRUB has no wildcard "
         "translator yet, so the word stays as written and no glob entry is made",
         HEAD + "for k in /vmlinuz-*; do\n  if [ -f \"$k\" ]; then\n"
         f"    menuentry \"glob $k\" \"$k\" {{\n      linux $2 root=/dev/null g=$2\n      initrd /initrd.img-{V9}\n    }}\n"
         "  fi\ndone\n" + simple("no glob", V8, opts="g=none")),
    Case("wildcard-insmod-regexp", "insmod regexp, then for k in /vmlinuz-*: an entry per kernel, in the "
         "directory's order; the first boots",
         HEAD + "insmod regexp\nfor k in /vmlinuz-*; do\n  if [ -f \"$k\" ]; then\n"
         f"    menuentry \"glob $k\" \"$k\" {{\n      linux $2 root=/dev/null g=$2\n      initrd /initrd.img-{V9}\n    }}\n"
         "  fi\ndone\n" + simple("no glob", V8, opts="g=none")),
    Case("regexp-set", "regexp --set picks the version out of a file name; the entry boots that kernel",
         HEAD + f"regexp --set 1:v --set 2:flavour '^/vmlinuz-([0-9.]+-[0-9]+)-(.*)$' /vmlinuz-{V9}\n"
         "menuentry \"v=$v f=$flavour\" {\n  linux /vmlinuz-$v-$flavour root=/dev/null v=$v f=$flavour\n"
         "  initrd /initrd.img-$v-$flavour\n}\n"),
    Case("fallback-list", "fallback is a list: the first of its entries that boots",
         HEAD + "set default=0\nset fallback='1 2'\n" + simple("broken", "6.1.0-404-amd64", opts="f=0")
         + simple("broken too", "6.1.0-405-amd64", opts="f=1") + simple("third", V8, opts="f=2")),
    Case("submenu-context", "a submenu opens a new context: only exported variables reach its entries",
         HEAD + "set plain=p\nset exported=e\nexport exported\nset default='0>0'\nsubmenu 'sub' {\n"
         f"  menuentry 'inner' {{\n    linux /vmlinuz-{V9} root=/dev/null plain=$plain exported=$exported\n"
         f"    initrd /initrd.img-{V9}\n  }}\n}}\n", ci=True),
    Case("configfile-menu", "the default entry runs configfile: that file's menu replaces this one, its default boots",
         HEAD + "menuentry 'more' {\n  configfile /grub/more.cfg\n}\n" + simple("not this", V10, opts="c=0"),
         extra={"/grub/more.cfg": Text("set timeout=0\nset default=1\n" + simple("inner 0", V10, opts="c=1.0")
                                       + simple("inner 1", V9, opts="c=1.1"))}),
    Case("source-in-entry", "the default entry sources a file that defines entries: unlike configfile no "
         "menu opens, the entry loads no kernel and fails, and the fallback boots",
         HEAD + "set fallback=1\nmenuentry 'sourcing' {\n  source /grub/more.cfg\n}\n" + simple("plain", V10, opts="si=plain"),
         extra={"/grub/more.cfg": Text("set default=1\n" + simple("sourced 0", V8, opts="si=0")
                                       + simple("sourced 1", V9, opts="si=1"))}),
    Case("source-vars", "source runs a file in this context: its variables, entries and default count",
         HEAD + "source /grub/vars.cfg\nmenuentry \"sourced $kv\" {\n  linux /vmlinuz-$kv root=/dev/null from=$where\n"
         "  initrd /initrd.img-$kv\n}\n",
         extra={"/grub/vars.cfg": Text(f"set kv={V8}\nset where=sourced\nset default=1\n"
                                       + simple("from source", V10, opts="src=1"))}),
    Case("linux16", "linux16/initrd16, the 16-bit boot protocol of i386-pc",
         HEAD + f"menuentry 'sixteen' {{\n  linux16 /vmlinuz-{V9} root=/dev/null x=16\n"
         f"  initrd16 /initrd.img-{V9}\n}}\n"),
    Case("load-env-file", "load_env -f FILE VARS loads the named variables only",
         HEAD + f"load_env -f /grub/custom.env kv opts\nmenuentry 'env' {{\n"
         "  linux /vmlinuz-$kv root=/dev/null $opts skipped=$skipped\n  initrd /initrd.img-$kv\n}\n",
         extra={"/grub/custom.env": GrubEnv((("kv", V8), ("opts", "from=env"), ("skipped", "yes")))}),
    Case("saved-title-in-submenu", "saved_entry names a submenu entry's title without its path: "
         "GRUB matches only the top level, so entry 0 boots",
         HEAD + ENV_HEADER + SAVING, env={"saved_entry": "Debian, with Linux 9"}, watch=("saved_entry",)),
    Case("search-miss-keeps-root", "a search for a UUID no device has fails and leaves root as it was",
         HEAD + "menuentry 'missed' {\n  search --no-floppy --fs-uuid --set=root 00000000-0000-4000-8000-000000000000\n"
         f"  linux /vmlinuz-{V8} root=/dev/null r=$root\n  initrd /initrd.img-{V8}\n}}\n"),
    Case("loopback-iso", "loopback maps an ISO file on /boot; kernel and initrd come from inside it",
         HEAD + "menuentry 'live' {\n  loopback loop /live.iso\n"
         "  linux (loop)/live/vmlinuz root=/dev/null iso=yes\n  initrd (loop)/live/initrd.img\n}\n",
         extra={"/live.iso": IsoImage((("/live/vmlinuz", Kernel()), ("/live/initrd.img", Marker("iso-live"))))}),
    Case("loopback-cfg-iso-path", "the live-ISO loopback.cfg convention: the disk's entry exports iso_path, "
         "maps the ISO and opens its /boot/grub/loopback.cfg, whose entry passes findiso=${iso_path}",
         HEAD + "menuentry 'live via loopback.cfg' {\n  set iso_path=/live.iso\n  export iso_path\n"
         "  loopback loop $iso_path\n  set root=(loop)\n  configfile /boot/grub/loopback.cfg\n}\n",
         extra={"/live.iso": IsoImage((
             ("/live/vmlinuz", Kernel()), ("/live/initrd.img", Marker("iso-cfg")),
             ("/boot/grub/loopback.cfg", Text(
                 "set timeout=0\nmenuentry 'Live system' {\n"
                 "  linux /live/vmlinuz boot=live findiso=${iso_path} root=/dev/null\n"
                 "  initrd /live/initrd.img\n}\n"))))}),
    Case("gpt-names-probe", "on GPT: (hd0,gpt3) and (hd0,4) device names, probe --part-uuid (the "
         "partition GUID) and --fs, search --fs-uuid",
         HEAD + "probe --set=p --part-uuid (hd0,gpt3)\nprobe --set=f --fs (hd0,gpt4)\n"
         f"search --no-floppy --fs-uuid --set=r {ROOT_UUID}\nmenuentry \"gpt $r\" {{\n"
         f"  linux (hd0,gpt3)/boot/vmlinuz-{OTHER_VERSION} root=PARTUUID=$p f=$f r=$r\n"
         "  initrd (hd0,4)/extra/extra.img ($r)/boot/initrd-other.img\n}\n", ci=True, table="gpt"),
    Case("probe", "probe --set answers: file system UUID, label, partition UUID, file system, driver",
         HEAD + "probe --set=u --fs-uuid (hd0,msdos2)\nprobe --set=l --label (hd0,msdos3)\n"
         "probe --set=p --part-uuid (hd0,msdos2)\nprobe --set=f --fs (hd0,msdos3)\nprobe --set=d --driver (hd0,msdos1)\n"
         f"menuentry 'probed' {{\n  linux /vmlinuz-{V10} root=UUID=$u l=$l p=$p f=$f d=$d\n"
         f"  initrd /initrd.img-{V10}\n}}\n", ci=True),
    Case("fallback", "the default's kernel is missing: GRUB falls back to the entry named by fallback",
         HEAD + "set default=0\nset fallback=2\n"
         + simple("broken", "6.1.0-404-amd64", opts="f=0") + simple("not this", V10, opts="f=1")
         + simple("fallback", V9, opts="f=2"), ci=True),
]

BOOTED = [case for case in CASES if case.ci or mode()]
_generated: dict[str, str] = {}


def config(case: Case, payload: Payload) -> str:
    if case.defaults is None:
        return case.config
    if not _generated:  # every mkconfig case's config, from one chroot
        _generated.update(grub.mkconfig(payload.markers.parent, payload,
                                        {c.name: c.defaults for c in CASES if c.defaults is not None}))
    return _generated[case.name]


def golden_name(case: Case) -> str:
    """The golden file's name: a grub-mkconfig case's config is what the host's
    grub-mkconfig writes, which differs by GRUB release (Debian's 2.12 adds dis_ucode_ldr
    to recovery entries), so its answer is recorded per release ("NAME.grub-2.12")."""
    if case.defaults is None:
        return case.name
    found = re.match(r"\d+\.\d+", host_grub_version() or "")
    if not found:
        pytest.skip("no grub-common: grub-mkconfig's release unknown")
    return f"{case.name}.grub-{found.group(0)}"


def image(case: Case, payload: Payload) -> DiskImage:
    workdir = payload.markers.parent
    return cached_image(f"{grub.BOOTLOADER}/{case.name}", lambda: grub.build(
        workdir, payload, case.name, grub.layout(config(case, payload), case.env, case.extra, case.table), case.table))


def params(cases: list[Case]) -> list:
    """The cases, those with a ``gap`` as strict expected failures (they turn into
    failures the day guestboot does it, and the mark must go)."""
    return [pytest.param(c, id=c.name, marks=[pytest.mark.xfail(strict=True, reason=c.gap)] if c.gap else [])
            for c in cases]


@pytest.mark.parametrize("case", params(CASES))
def test_guestboot_chooses_what_grub_booted(case, payload):
    check_recorded(grub.BOOTLOADER, golden_name(case), case.note, image(case, payload))


@pytest.mark.parametrize("case", params(BOOTED))
def test_real_grub_boot(case, payload):
    disk = image(case, payload)
    theirs, env, seconds = grub.boot(disk, case.table)
    after = {"grubenv": {key: env.get(key) for key in case.watch}}  # None: not in the block
    check_boot(grub.BOOTLOADER, grub.version(), golden_name(case), case.note, disk, theirs, seconds, after)
