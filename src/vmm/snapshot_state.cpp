#include "vmm/snapshot_state.h"

#include <cstring>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/try.h"
#include "storage/pool/crc32c.h"
#include "vmm/machine_config_json.h"
#include "vmm/snapshot_codec.h"

namespace kasou::vmm {

namespace {

using namespace arch::x86_64;

// Limits on what a state file may count: far above what KVM or kasou produce, low enough that
// nothing a file says can make the reader allocate much more than the file's own size.
constexpr u64 MAX_CONFIG_JSON = 1 << 20;
constexpr u64 MAX_CPUID_ENTRIES = 1024;
constexpr u64 MAX_XCRS = 16;
constexpr u64 MAX_MSRS = 4096;
// The fewest bytes each list element takes when encoded.
constexpr size_t CPUID_ENTRY_SIZE = 25;
constexpr size_t INDEXED_VALUE_SIZE = 12;
constexpr size_t VCPU_MIN_SIZE = sizeof(XsaveArea) + sizeof(LapicRegisters);

constexpr u32 tag(char const (&name)[5]) { return u32(u8(name[0])) | u32(u8(name[1])) << 8 | u32(u8(name[2])) << 16 | u32(u8(name[3])) << 24; }

constexpr u32 TAG_CONFIG = tag("CONF");
constexpr u32 TAG_MEMORY = tag("MEMS");
constexpr u32 TAG_VCPUS = tag("VCPU");
constexpr u32 TAG_SPLIT_IRQCHIP = tag("SIRQ");
constexpr u32 TAG_KERNEL_IRQCHIP = tag("KIRQ");
constexpr u32 TAG_CLOCK = tag("CLCK");
constexpr u32 TAG_UART = tag("UART");
constexpr u32 TAG_RTC = tag("RTC ");
constexpr u32 TAG_I8042 = tag("KBDC");

std::string tag_name(u32 value)
{
    std::string name;
    for (int i = 0; i < 4; ++i) {
        char c = static_cast<char>(value >> (8 * i));
        name += (c >= 0x20 && c < 0x7f) ? c : '?';
    }
    return name;
}

// vCPU state.

template<class C>
void visit(C& c, CpuidEntry& e)
{
    c.value(e.function), c.value(e.index), c.value(e.significant_index), c.value(e.eax), c.value(e.ebx), c.value(e.ecx), c.value(e.edx);
}

template<class C>
void visit(C& c, GeneralRegisters& r)
{
    for (u64* field : { &r.rax, &r.rbx, &r.rcx, &r.rdx, &r.rsi, &r.rdi, &r.rsp, &r.rbp, &r.r8, &r.r9, &r.r10, &r.r11, &r.r12, &r.r13, &r.r14,
             &r.r15, &r.rip, &r.rflags })
        c.value(*field);
}

template<class C>
void visit(C& c, Segment& s)
{
    c.value(s.base), c.value(s.limit), c.value(s.selector), c.value(s.type);
    for (u8* field : { &s.present, &s.dpl, &s.db, &s.s, &s.l, &s.g, &s.avl })
        c.value(*field);
    c.value(s.unusable);
}

template<class C>
void visit(C& c, SystemRegisters& s)
{
    for (Segment* segment : { &s.cs, &s.ds, &s.es, &s.fs, &s.gs, &s.ss, &s.tr, &s.ldt })
        visit(c, *segment);
    for (DescriptorTable* table : { &s.gdt, &s.idt })
        c.value(table->base), c.value(table->limit);
    for (u64* field : { &s.cr0, &s.cr2, &s.cr3, &s.cr4, &s.cr8, &s.efer, &s.apic_base })
        c.value(*field);
    for (u64& word : s.pending_interrupts)
        c.value(word);
}

template<class C>
void visit(C& c, FpuState& f)
{
    for (auto& slot : f.fpr)
        c.bytes(slot);
    c.value(f.fcw), c.value(f.fsw), c.value(f.ftwx), c.value(f.last_opcode), c.value(f.last_ip), c.value(f.last_dp);
    for (auto& slot : f.xmm)
        c.bytes(slot);
    c.value(f.mxcsr);
}

template<class C>
void visit(C& c, PendingEvents& e)
{
    auto& x = e.exception;
    c.value(x.injected), c.value(x.pending), c.value(x.vector), c.value(x.has_error_code), c.value(x.error_code), c.value(x.has_payload),
        c.value(x.payload);
    auto& i = e.interrupt;
    c.value(i.injected), c.value(i.vector), c.value(i.soft), c.value(i.shadow);
    c.value(e.nmi.injected), c.value(e.nmi.pending), c.value(e.nmi.masked);
    c.value(e.sipi_vector);
    c.value(e.smi.smm), c.value(e.smi.pending), c.value(e.smi.inside_nmi), c.value(e.smi.latched_init);
    c.value(e.triple_fault_pending);
}

template<class C>
void visit(C& c, VcpuState& v)
{
    c.list(v.cpuid, MAX_CPUID_ENTRIES, CPUID_ENTRY_SIZE, [&](CpuidEntry& e) { visit(c, e); });
    visit(c, v.registers);
    visit(c, v.system);
    visit(c, v.fpu);
    for (u32& word : v.xsave)
        c.value(word);
    c.list(v.xcrs, MAX_XCRS, INDEXED_VALUE_SIZE, [&](Xcr& x) { c.value(x.index), c.value(x.value); });
    c.list(v.msrs, MAX_MSRS, INDEXED_VALUE_SIZE, [&](Msr& m) { c.value(m.index), c.value(m.value); });
    for (u64& address : v.debug.address)
        c.value(address);
    c.value(v.debug.dr6), c.value(v.debug.dr7);
    c.bytes(v.lapic);
    visit(c, v.events);
    c.bounded(v.mp_state, static_cast<u64>(MpState::SipiReceived), "MP state");
}

// kasou's interrupt controllers.

template<class C>
void visit(C& c, emu::Pic8259::State& p)
{
    for (u8* field : { &p.elcr, &p.lines, &p.irr, &p.isr, &p.imr, &p.lowest_priority, &p.vector_base, &p.init_step })
        c.value(*field);
    for (bool* flag : { &p.expect_icw4, &p.single, &p.level_triggered_all, &p.auto_eoi, &p.rotate_on_auto_eoi, &p.special_fully_nested,
             &p.special_mask, &p.poll, &p.read_isr })
        c.value(*flag);
}

template<class C>
void visit(C& c, emu::PitChannel::State& p)
{
    c.value(p.access), c.value(p.mode), c.value(p.bcd), c.value(p.gate), c.value(p.null_count), c.value(p.phase), c.value(p.loaded),
        c.value(p.reload), c.value(p.start), c.value(p.held), c.value(p.write_low), c.value(p.write_high_next), c.value(p.read_high_next);
    c.optional(p.latched_count);
    c.value(p.latched_high_next);
    c.optional(p.latched_status);
}

template<class C>
void visit(C& c, SplitIrqchip::State& s)
{
    visit(c, s.pic.master);
    visit(c, s.pic.slave);
    c.value(s.ioapic.select), c.value(s.ioapic.id);
    for (u64& entry : s.ioapic.table)
        c.value(entry);
    c.value(s.ioapic.lines);
    c.value(s.pit.now), c.value(s.pit.last_update), c.value(s.pit.speaker_enable);
    for (auto& channel : s.pit.channels)
        visit(c, channel);
}

// The engine's interrupt controllers and clock.

template<class C>
void visit(C& c, engine::PicChipState& p)
{
    for (u8* field : { &p.last_irr, &p.irr, &p.imr, &p.isr, &p.priority_add, &p.irq_base, &p.read_reg_select, &p.poll, &p.special_mask,
             &p.init_state, &p.auto_eoi, &p.rotate_on_auto_eoi, &p.special_fully_nested_mode, &p.init4, &p.elcr, &p.elcr_mask })
        c.value(*field);
}

template<class C>
void visit(C& c, engine::KernelIrqchipState& k)
{
    visit(c, k.pic_primary);
    visit(c, k.pic_secondary);
    c.value(k.ioapic.base_address), c.value(k.ioapic.ioregsel), c.value(k.ioapic.id), c.value(k.ioapic.irr);
    for (u64& entry : k.ioapic.redirection)
        c.value(entry);
    for (auto& p : k.pit) {
        c.value(p.count), c.value(p.latched_count);
        for (u8* field : { &p.count_latched, &p.status_latched, &p.status, &p.read_state, &p.write_state, &p.write_latch, &p.rw_mode, &p.mode,
                 &p.bcd, &p.gate })
            c.value(*field);
        c.value(p.load_age_ns);
    }
    c.value(k.pit_flags);
}

// Legacy devices.

template<class C>
void visit(C& c, devices::Serial16550::State& u)
{
    for (u8* field : { &u.interrupt_enable, &u.line_control, &u.modem_control, &u.scratch, &u.divisor_low, &u.divisor_high })
        c.value(*field);
    c.value(u.fifo_enabled), c.value(u.transmitter_empty_pending);
    c.blob(u.input, devices::Serial16550::INPUT_LIMIT);
}

template<class C>
void visit(C& c, devices::I8042::State& k)
{
    c.value(k.command_byte), c.value(k.output_port), c.value(k.pending_command);
    c.blob(k.output, devices::I8042::BUFFER_SIZE);
}

void put_u32(std::vector<u8>& out, size_t at, u32 value)
{
    for (int i = 0; i < 4; ++i)
        out[at + i] = static_cast<u8>(value >> (8 * i));
}

u32 get_u32(std::span<u8 const> in, size_t at) { return u32(in[at]) | u32(in[at + 1]) << 8 | u32(in[at + 2]) << 16 | u32(in[at + 3]) << 24; }

u64 get_u64(std::span<u8 const> in, size_t at) { return u64(get_u32(in, at)) | u64(get_u32(in, at + 4)) << 32; }

} // namespace

std::vector<u8> encode_snapshot_state(SnapshotState const& original)
{
    SnapshotState state = original; // the visitors take mutable references, for the reader's sake
    SnapshotWriter out;
    out.buffer().resize(SNAPSHOT_HEADER_SIZE);
    auto section = [&](u32 name, auto&& write) {
        out.value(name);
        out.value(u32 { 0 });
        size_t length_at = out.buffer().size();
        out.value(u64 { 0 });
        size_t start = out.buffer().size();
        write(out);
        u64 length = out.buffer().size() - start;
        for (int i = 0; i < 8; ++i)
            out.buffer()[length_at + i] = static_cast<u8>(length >> (8 * i));
    };
    std::string config = machine_config_to_json(state.config).dump();
    section(TAG_CONFIG, [&](SnapshotWriter& c) { c.text(config, MAX_CONFIG_JSON); });
    section(TAG_MEMORY, [&](SnapshotWriter& c) { c.value(state.memory_size); });
    section(TAG_VCPUS, [&](SnapshotWriter& c) { c.list(state.vcpus, MAX_CONFIG_CPUS, VCPU_MIN_SIZE, [&](VcpuState& v) { visit(c, v); }); });
    if (auto* split = std::get_if<SplitIrqchip::State>(&state.irqchip))
        section(TAG_SPLIT_IRQCHIP, [&](SnapshotWriter& c) { visit(c, *split); });
    else
        section(TAG_KERNEL_IRQCHIP, [&](SnapshotWriter& c) { visit(c, std::get<engine::KernelIrqchipState>(state.irqchip)); });
    section(TAG_CLOCK, [&](SnapshotWriter& c) { c.value(state.clock.ns); });
    section(TAG_UART, [&](SnapshotWriter& c) { visit(c, state.uart); });
    section(TAG_RTC, [&](SnapshotWriter& c) { c.value(state.rtc.index), c.bytes(state.rtc.bytes); });
    section(TAG_I8042, [&](SnapshotWriter& c) { visit(c, state.i8042); });

    auto& bytes = out.buffer();
    std::memcpy(bytes.data(), SNAPSHOT_MAGIC, sizeof SNAPSHOT_MAGIC);
    put_u32(bytes, 8, SNAPSHOT_VERSION);
    put_u32(bytes, 12, 0);
    u64 body_length = bytes.size() - SNAPSHOT_HEADER_SIZE;
    put_u32(bytes, 16, static_cast<u32>(body_length));
    put_u32(bytes, 20, static_cast<u32>(body_length >> 32));
    put_u32(bytes, 24, storage::crc32c(std::span(bytes).subspan(SNAPSHOT_HEADER_SIZE)));
    put_u32(bytes, 28, storage::crc32c(std::span(bytes).first(28)));
    return std::move(bytes);
}

namespace {

ErrorOr<SnapshotState> decode_body(std::span<u8 const> file)
{
    if (file.size() < SNAPSHOT_HEADER_SIZE)
        return make_error(fmt::format("truncated: {} bytes, the header alone takes {}", file.size(), SNAPSHOT_HEADER_SIZE));
    if (std::memcmp(file.data(), SNAPSHOT_MAGIC, sizeof SNAPSHOT_MAGIC) != 0)
        return make_error("not a kasou snapshot state file (wrong magic)");
    if (get_u32(file, 28) != storage::crc32c(file.first(28)))
        return make_error("corrupted: the header's CRC-32C does not match");
    if (u32 version = get_u32(file, 8); version != SNAPSHOT_VERSION)
        return make_error(ErrorKind::Unsupported,
            fmt::format("format version {}, but this kasou reads version {} only (the snapshot was written by another kasou version)", version,
                SNAPSHOT_VERSION));
    if (u32 flags = get_u32(file, 12); flags != 0)
        return make_error(fmt::format("header flags {:#x}: none are defined", flags));
    u64 body_length = get_u64(file, 16);
    u64 present = file.size() - SNAPSHOT_HEADER_SIZE;
    if (body_length > present)
        return make_error(fmt::format("truncated: the header announces {} bytes after it, the file holds {}", body_length, present));
    if (body_length < present)
        return make_error(fmt::format("{} bytes follow the {} the header announces", present - body_length, body_length));
    auto body = file.subspan(SNAPSHOT_HEADER_SIZE);
    if (get_u32(file, 24) != storage::crc32c(body))
        return make_error("corrupted: the body's CRC-32C does not match");

    SnapshotState state;
    std::map<u32, bool> seen;
    std::string config_json;
    size_t offset = 0;
    while (offset < body.size()) {
        constexpr size_t SECTION_HEADER = 16;
        if (body.size() - offset < SECTION_HEADER)
            return make_error(fmt::format("truncated section header at body offset {}", offset));
        u32 name = get_u32(body, offset);
        u32 reserved = get_u32(body, offset + 4);
        u64 length = get_u64(body, offset + 8);
        offset += SECTION_HEADER;
        if (reserved != 0)
            return make_error(fmt::format("section {}: reserved word is {:#x}, not 0", tag_name(name), reserved));
        if (length > body.size() - offset)
            return make_error(fmt::format("section {}: {} bytes announced, {} left", tag_name(name), length, body.size() - offset));
        if (seen[name])
            return make_error(fmt::format("section {} appears twice", tag_name(name)));
        seen[name] = true;
        SnapshotReader c(body.subspan(offset, length));
        offset += length;
        switch (name) {
        case TAG_CONFIG:
            c.text(config_json, MAX_CONFIG_JSON);
            break;
        case TAG_MEMORY:
            c.value(state.memory_size);
            break;
        case TAG_VCPUS:
            c.list(state.vcpus, MAX_CONFIG_CPUS, VCPU_MIN_SIZE, [&](VcpuState& v) { visit(c, v); });
            break;
        case TAG_SPLIT_IRQCHIP:
            visit(c, state.irqchip.emplace<SplitIrqchip::State>());
            break;
        case TAG_KERNEL_IRQCHIP:
            visit(c, state.irqchip.emplace<engine::KernelIrqchipState>());
            break;
        case TAG_CLOCK:
            c.value(state.clock.ns);
            break;
        case TAG_UART:
            visit(c, state.uart);
            break;
        case TAG_RTC:
            c.value(state.rtc.index), c.bytes(state.rtc.bytes);
            break;
        case TAG_I8042:
            visit(c, state.i8042);
            break;
        default:
            return make_error(fmt::format("unknown section {}", tag_name(name)));
        }
        if (c.error())
            return make_error(fmt::format("section {}: {}", tag_name(name), *c.error()));
        if (!c.at_end())
            return make_error(fmt::format("section {}: bytes left over after its last field", tag_name(name)));
    }
    for (u32 required : { TAG_CONFIG, TAG_MEMORY, TAG_VCPUS, TAG_CLOCK, TAG_UART, TAG_RTC, TAG_I8042 }) {
        if (!seen[required])
            return make_error(fmt::format("section {} is missing", tag_name(required)));
    }
    if (seen[TAG_SPLIT_IRQCHIP] == seen[TAG_KERNEL_IRQCHIP])
        return make_error("exactly one of the sections SIRQ (kasou's interrupt controllers) and KIRQ (the engine's) must be present");
    state.config = TRY(machine_config_from_json_text(config_json).map_error([](Error const& e) { return e.with_prefix("section CONF"); }));
    if (state.vcpus.size() != state.config.cpus)
        return make_error(fmt::format("{} vCPU states for a machine of {} vCPUs", state.vcpus.size(), state.config.cpus));
    if (state.memory_size != state.config.memory)
        return make_error(fmt::format("memory size {} differs from the machine's {}", state.memory_size, state.config.memory));
    return state;
}

} // namespace

ErrorOr<SnapshotState> decode_snapshot_state(std::span<u8 const> file)
{
    return decode_body(file).map_error([](Error const& e) { return e.with_prefix("snapshot state file"); });
}

} // namespace kasou::vmm
