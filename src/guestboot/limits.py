"""Every bound guestboot puts on guest-controlled work, in one place.

A loop over on-disk structures, a recursion through guest data or an allocation sized by
a guest value takes its bound from here (``from guestboot.limits import LIMITS``). When a
bound is hit the code raises :class:`guestboot.errors.LimitExceeded` naming the field.
"""

from __future__ import annotations

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


class Limits:
    """The bounds, read as ``LIMITS.max_…``. Read-only; ``_replace(name=value, …)`` gives a
    copy with some changed (tests). A plain class, not a NamedTuple: making a tuple type
    of this many fields cost a couple of milliseconds of every run's start-up."""

    # --- extraction -------------------------------------------------------------------
    max_output_file: int = 1 * GiB  # one extracted kernel or initrd (concatenated initrds)
    max_output_total: int = 2 * GiB  # everything one run writes
    max_child_result: int = 1 * MiB  # bytes of JSON the sandboxed child sends back (sandbox/)

    # --- byte sources / volumes -------------------------------------------------------
    max_partitions: int = 256  # partitions probed per disk (GPT entries beyond are ignored)
    max_gpt_entries: int = 1024  # NumberOfPartitionEntries accepted in a GPT header
    max_gpt_entry_size: int = 4096  # SizeOfPartitionEntry accepted (spec: 128 * 2^n)
    max_bsd_partitions: int = 22  # BSD disklabel entries read (what fits in its 512-byte sector)
    max_logical_partitions: int = 64  # links followed in an MBR extended chain
    max_disks: int = 64  # disk images given for one guest (hd0, hd1, …)
    max_volumes: int = 4096  # volumes found in all, partitions and stacked volumes together
    max_stack_rounds: int = 8  # rounds of stacked-volume discovery (a partition in an md array in …)
    max_volume_segments: int = 4096  # members/segments joined into one stacked volume
    max_lvm_metadata_bytes: int = 4 * MiB  # one copy of LVM2 text metadata (lvm2's default area: ~1 MiB)
    max_lvm_metadata_total: int = 16 * MiB  # LVM2 metadata text read in one discovery, all PVs (~2 MB/s parsed)
    max_lvm_config_depth: int = 16  # nested sections in LVM2 metadata (lvm2 writes 4)
    max_md_devices: int = 1920  # devices of one md array (the kernel's bound for a 4 KiB 1.x superblock)
    max_lvm_lv_depth: int = 8  # LVs made of sub-LVs made of … (a mirror of images: 1)

    # --- image formats (qcow2, VHD, VHDX, VMDK) ------------------------------------------
    max_backing_depth: int = 16  # images below the first in one backing/parent chain
    max_image_table: int = 32 * MiB  # one L1 table / BAT / grain directory, as declared (QEMU's own L1 cap); read on demand
    max_image_cache: int = 32 * MiB  # table chunks and decoded clusters all images of a run keep (one shared cache)
    max_image_cluster: int = 2 * MiB  # one compressed cluster or grain, packed and unpacked (QEMU's qcow2 cap)
    max_image_block: int = 256 * MiB  # one VHD/VHDX block (VHDX's own maximum)
    max_image_extents: int = 1024  # extents listed in one VMDK descriptor
    max_descriptor_bytes: int = 1 * MiB  # one VMDK text descriptor or VHDX metadata item

    # --- file systems -----------------------------------------------------------------
    max_block_groups: int = 1 << 20  # ext group descriptors read
    max_extent_depth: int = 5  # ext4 extent tree depth (the kernel's own bound is 5)
    max_dir_cache_bytes: int = 4 * MiB  # directory blocks whose parsed names one file system keeps
    max_cached_extents: int = 1 << 16  # extent-map runs kept by one file system's cached directory maps
    max_bmap_depth: int = 10  # XFS bmap B+tree levels (2^48 extents in 1 KiB blocks need fewer)
    max_dir_entries: int = 100_000  # entries read from one directory
    max_dir_bytes: int = 64 * MiB  # bytes of directory data scanned in one directory
    # … in all directories of all file systems of one image, one run (partitions that alias one
    # hostile file system share it; ~2 s of scanning at ~35 MiB/s), deleted slots included
    max_dir_bytes_total: int = 64 * MiB
    # metadata read to find things in one image, one run: extent/B-tree blocks, btrfs tree
    # blocks (cache hits too), FAT entries of cluster chains; each walk is also bounded alone
    max_meta_bytes_total: int = 256 * MiB
    max_dir_entries_total: int = 1_000_000  # directory entries parsed in one file system, one run (ISO 9660)
    max_symlink_hops: int = 40  # symlinks followed while resolving one path (Linux: 40)
    max_symlink_size: int = 4096  # bytes of one symlink target (PATH_MAX)
    max_name_bytes: int = 1024  # bytes of one file name assembled from pieces (Rock Ridge NM entries)
    max_path_components: int = 256  # components in one path after expansion
    max_file_runs: int = 1 << 20  # extents/block runs mapped for one file
    max_tree_bytes: int = 64 * MiB  # btrfs tree-block bytes one search or listing visits (cache hits too)
    max_chunks: int = 1 << 16  # btrfs chunks mapped (a 64 TiB volume of 1 GiB chunks)
    max_compressed_extent: int = 128 * KiB  # one compressed extent, on disk and decompressed (btrfs's own cap)
    max_decompressed_block: int = 1 * MiB  # one compressed block decoded (squashfs allows 1 MiB blocks)
    max_map_bytes: int = 16 * MiB  # indirect/extent-tree blocks read to map one file (4 GiB at 1 KiB blocks)
    max_volume_descriptors: int = 64  # ISO 9660 volume descriptors read before the terminator
    max_susp_continuations: int = 64  # ISO 9660 System Use continuation areas (CE) followed for one record
    max_boot_catalog_entries: int = 1024  # El Torito boot catalog entries read

    # --- boot configuration -----------------------------------------------------------
    max_config_bytes: int = 4 * MiB  # one grub.cfg / menu.lst / sourced file
    max_config_files: int = 1024  # files a directory-based config format reads (BLS entries, UKIs)
    max_entries_bytes: int = 16 * MiB  # bytes of BLS entry files one evaluation reads (blscfg, systemd-boot), together
    max_sort_field_bytes: int = 256  # one field systemd-boot sorts entries by (id, sort-key, machine-id, version)
    max_config_bytes_total: int = 16 * MiB  # config text one evaluation reads in all (SYSLINUX INCLUDEs)
    max_env_block_bytes: int = 64 * KiB  # one grubenv file
    max_source_depth: int = 10  # nested source/configfile
    max_script_steps: int = 300_000  # commands run by one config evaluation, its entries included
    max_config_work: int = 64 * MiB  # bytes one config evaluation processes: read, lexed, expanded, split, echoed, warned (boot/budget.py)
    max_config_held: int = 16 * MiB  # bytes one config evaluation holds: variables, menu entries, warnings, echo output
    max_config_lines: int = 50_000  # lines of one config file (the largest real one in tests/data: 892; indexing a line costs memory)
    max_call_depth: int = 64  # nested function calls
    max_script_recursion: int = 64  # nested commands being executed (GRUB's execute.c: 64, then an error)
    max_test_nesting: int = 100  # nested parentheses in one test/[ command (GRUB's test.c: 100)
    max_functions: int = 10_000  # GRUB functions defined by one evaluation
    max_loop_iterations: int = 100_000  # iterations of one for/while/until loop
    max_word_bytes: int = 1 * MiB  # one word/variable value after expansion
    max_variables: int = 10_000  # distinct variables in one environment
    max_copied_variables: int = 1_000_000  # variables copied into new GRUB contexts (submenus, configfile, menu snapshots), one evaluation
    max_menu_entries: int = 10_000  # menu entries + submenus in one menu tree
    max_submenu_depth: int = 16  # nesting of submenus
    max_loop_devices: int = 8  # disks a config makes of guest files (GRUB's loopback), one image
    max_initrds: int = 64  # files on one initrd line
    max_regex_program: int = 10_000  # NFA instructions one GRUB regexp pattern compiles to (and its length)
    max_regex_steps: int = 2_000_000  # thread steps of one regexp match (program size x input length)

    # --- kernel inspection (kernel/) ----------------------------------------------------
    max_kernel_decompressed: int = 1 * GiB  # one decompressed kernel payload (Xen's XC_DOM_DECOMPRESS_MAX)
    max_inspect_decompressed: int = 4 * GiB  # bytes decompressed by one run's inspection of all its kernels
    max_kernel_passes: int = 3  # decompressions of one payload while inspecting it (version string, notes, sections)
    max_elf_headers: int = 4096  # program or section headers read from one ELF file
    max_elf_note_bytes: int = 1 * MiB  # bytes of note segments/sections read from one ELF file
    max_pe_sections: int = 96  # PE section headers read (the PE format allows 96)
    max_initrd_parts: int = 16  # concatenated archives looked at in one initrd (microcode + main)
    max_cpio_members: int = 100_000  # members of one uncompressed cpio archive walked
    max_multiboot_modules: int = 64  # module/module2 lines of one multiboot entry
    max_initrd_gap: int = 1 * MiB  # zero bytes skipped between two archives of one initrd
    max_inspected_files: int = 256  # files looked at by one "inspect" (menu entries and /boot)

    # --- the interactive menu (cli/console_menu.py) ------------------------------------------
    max_menu_wait_seconds: int = 60  # before the first key: a config's longer (or endless) countdown is cut to this
    max_edited_args: int = 4096  # characters of kernel arguments typed at the menu (Linux x86: 2048 used)
    max_edited_lines: int = 64  # lines of an entry edited at the menu ('e') or typed at its command line ('c')

    # --- sandbox (sandbox/; see SECURITY.md) -----------------------------------------------
    sandbox_wall_seconds: int = 60  # the whole confined child, wall clock (libxl kills a bootloader at 120 s)
    sandbox_cpu_seconds: int = 50  # CPU time of the confined child (RLIMIT_CPU)
    sandbox_memory: int = 256 * MiB  # address space the child may add to what it holds at start (RLIMIT_AS; PYGRUB_MAX_RAM_USAGE_MB)


    def __init__(self, **changes: int) -> None:
        for name, value in changes.items():
            if name.startswith("_") or not hasattr(Limits, name):
                raise TypeError(f"Limits has no field {name!r}")
            object.__setattr__(self, name, value)

    def _replace(self, **changes: int) -> "Limits":
        return Limits(**{**vars(self), **changes})

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to {name!r}: LIMITS is read-only (use _replace)")

    def __repr__(self) -> str:
        return f"Limits({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


LIMITS = Limits()
