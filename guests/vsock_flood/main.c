/* vsock_flood.elf: a hostile virtio-vsock driver (virtio 1.2, 5.10). It connects to host port
 * port=P (default 5000, where the test echoes), then, with no rx buffer posted, sends packets=N
 * packets (default 1000000) from a loop at CPL3, each of which asks the device for a reply:
 *   flood=unknown  OP_RW to host port P+1, where no connection exists (each is worth a RST);
 *   flood=credit   OP_CREDIT_REQUEST on its live connection (each asks for a CREDIT_UPDATE).
 * Then it posts rx buffers, counts the replies that waited, and checks that the connection still
 * echoes. Lines: "vsock_flood: connected to host port P", "vsock_flood: flooding N packets (MODE)",
 * "vsock_flood: sent N packets", "vsock_flood: R replies waited (RST a, CREDIT_UPDATE b, other c)",
 * "vsock_flood: echo ok". Exits 0, or one of the EXIT_ values below. */
#include "arch.h"
#include "console.h"
#include "exit.h"
#include "guest.h"
#include "idt.h"
#include "pci.h"
#include "string.h"
#include "usermode.h"
#include "virtio_pci.h"
#include "virtio_wait.h"

#define EXIT_BAD_START_INFO 1
#define EXIT_BAD_OPTION 2
#define EXIT_DEVICE_MISSING 3
#define EXIT_DEVICE_INIT 4
#define EXIT_TIMEOUT 5
#define EXIT_REFUSED 6
#define EXIT_TOO_MANY_REPLIES 7

#define BAR_WINDOW_BASE 0xc0000000ul
#define BAR_WINDOW_LIMIT 0xe0000000ul
#define RXQ 0
#define TXQ 1
#define QUEUES 3
#define RX_BUFFERS 32
/* More waiting replies than this and the device kept one per packet: the guest stops counting. */
#define MAX_REPLIES 4096
#define TIMEOUT_CYCLES (2 * TSC_CYCLES_ONE_SECOND)
#define QUIET_CYCLES (TSC_CYCLES_ONE_SECOND / 5)
#define GUEST_PORT 1024

/* struct virtio_vsock_hdr (virtio 1.2, 5.10.6), little-endian like the CPU. */
struct vsock_header {
    uint64_t src_cid;
    uint64_t dst_cid;
    uint32_t src_port;
    uint32_t dst_port;
    uint32_t len;
    uint16_t type;
    uint16_t op;
    uint32_t flags;
    uint32_t buf_alloc;
    uint32_t fwd_cnt;
} __attribute__((packed));

#define HOST_CID 2
#define TYPE_STREAM 1
#define OP_REQUEST 1
#define OP_RESPONSE 2
#define OP_RST 3
#define OP_RW 5
#define OP_CREDIT_UPDATE 6
#define OP_CREDIT_REQUEST 7
#define GUEST_BUFFER 65536

struct packet {
    struct vsock_header header;
    uint8_t data[256];
} __attribute__((packed));

static struct boot_info boot;
static struct pci_function functions[PCI_MAX_FUNCTIONS];
static struct virtio_pci_device vsock;
static struct virtqueue queues[QUEUES];
static struct packet rx[RX_BUFFERS];
static struct packet tx;
static struct vsock_header flood_packet;
static uint64_t guest_cid;

static struct vsock_header header(uint16_t op, uint32_t host_port, uint32_t length)
{
    struct vsock_header h = { guest_cid, HOST_CID, GUEST_PORT, host_port, length, TYPE_STREAM, op, 0, GUEST_BUFFER, 0 };
    return h;
}

static void post_rx(struct packet *buffer)
{
    struct virtq_buffer b = { buffer, sizeof *buffer, true };
    virtqueue_add(&queues[RXQ], &b, 1, false, buffer);
}

/* Sends tx (header and header.len bytes of data) and waits until the device has taken it. */
static void send_tx(void)
{
    struct virtq_buffer b = { &tx, (uint32_t)(sizeof tx.header + tx.header.len), false };
    void *token;
    uint32_t written;
    virtqueue_add(&queues[TXQ], &b, 1, false, &tx);
    virtqueue_kick(&queues[TXQ]);
    if (!virtio_wait_used(&queues[TXQ], rdtsc() + TIMEOUT_CYCLES) || !virtqueue_get_used(&queues[TXQ], &token, &written))
        guest_fail(EXIT_TIMEOUT, "vsock: the device did not take a packet within ~2 s");
}

/* The next packet on the rx queue, or NULL when none comes before deadline. */
static struct packet *receive(uint64_t deadline)
{
    void *token;
    uint32_t written;
    if (!virtio_wait_used(&queues[RXQ], deadline) || !virtqueue_get_used(&queues[RXQ], &token, &written))
        return 0;
    return token;
}

struct flood_run {
    uint64_t packets;
    uint64_t sent;
    uint64_t done;
    bool timed_out;
};

/* Keeps the tx queue full of flood_packet until run->packets are taken. Touches only memory (the
 * rings and the notification register), so it runs at CPL3. */
static uint64_t flood_loop(uint64_t argument)
{
    struct flood_run *run = (struct flood_run *)(uintptr_t)argument;
    struct virtqueue *vq = &queues[TXQ];
    struct virtq_buffer b = { &flood_packet, sizeof flood_packet, false };
    uint64_t deadline = rdtsc() + TIMEOUT_CYCLES;
    while (run->done < run->packets) {
        bool added = false;
        while (run->sent < run->packets && virtqueue_add(vq, &b, 1, false, &flood_packet)) {
            ++run->sent;
            added = true;
        }
        if (added)
            virtqueue_kick(vq);
        void *token;
        uint32_t written;
        bool progress = false;
        while (virtqueue_get_used(vq, &token, &written)) {
            ++run->done;
            progress = true;
        }
        if (progress) {
            deadline = rdtsc() + TIMEOUT_CYCLES;
        } else if (deadline_passed(deadline)) {
            run->timed_out = true;
            return 0;
        }
    }
    return 0;
}

static struct pci_function *find_vsock(void)
{
    unsigned count = pci_scan(functions, PCI_MAX_FUNCTIONS);
    if (pci_assign_bars(functions, count, BAR_WINDOW_BASE, BAR_WINDOW_LIMIT) < 0)
        guest_fail(EXIT_DEVICE_INIT, "cannot place the memory bars inside 0x%lx-0x%lx", BAR_WINDOW_BASE, BAR_WINDOW_LIMIT);
    for (unsigned i = 0; i < count; ++i) {
        if (virtio_pci_type(&functions[i]) == VIRTIO_ID_VSOCK)
            return &functions[i];
    }
    guest_fail(EXIT_DEVICE_MISSING, "no virtio-vsock device on bus 0");
}

void guest_main(struct hvm_start_info const *start_info)
{
    if (!boot_info_read(start_info, &boot))
        guest_fail(EXIT_BAD_START_INFO, "start info magic 0x%x version %u", boot.magic, boot.version);
    uint32_t port = (uint32_t)cmdline_number(boot.cmdline, "port", 5000, 1, 0xfffffffe, EXIT_BAD_OPTION);
    uint64_t packets = cmdline_number(boot.cmdline, "packets", 1000000, 1, 1ull << 40, EXIT_BAD_OPTION);
    char const *mode;
    size_t length;
    bool credit = false;
    if (cmdline_option(boot.cmdline, "flood", &mode, &length) && length == 6 && memcmp(mode, "credit", 6) == 0)
        credit = true;
    else if (!cmdline_option(boot.cmdline, "flood", &mode, &length) || length != 7 || memcmp(mode, "unknown", 7) != 0)
        guest_fail(EXIT_BAD_OPTION, "flood= takes unknown or credit");

    idt_init();
    usermode_init();
    virtio_wait_init(false);
    struct pci_function *f = find_vsock();
    char const *error = virtio_pci_start(&vsock, f, VIRTIO_F_EVENT_IDX, queues, QUEUES, VIRTQ_MAX_SIZE, 0);
    if (error)
        guest_fail(EXIT_DEVICE_INIT, "virtio-vsock at 00:%02x.%u: %s", f->device, f->function, error);
    guest_cid = virtio_pci_config64(&vsock, 0);

    /* One rx buffer, for the RESPONSE; afterwards the rx queue stays empty until the flood ends. */
    post_rx(&rx[0]);
    virtqueue_kick(&queues[RXQ]);
    tx.header = header(OP_REQUEST, port, 0);
    send_tx();
    struct packet *reply = receive(rdtsc() + TIMEOUT_CYCLES);
    if (!reply || reply->header.op != OP_RESPONSE)
        guest_fail(EXIT_REFUSED, "vsock: host port %u answered %s op %u", port, reply ? "with" : "nothing,", reply ? reply->header.op : 0);
    console_printf("vsock_flood: connected to host port %u\n", port);

    flood_packet = credit ? header(OP_CREDIT_REQUEST, port, 0) : header(OP_RW, port + 1, 0);
    console_printf("vsock_flood: flooding %lu packets (%s)\n", packets, credit ? "credit" : "unknown");
    struct flood_run run = { .packets = packets };
    run_at_cpl3(flood_loop, (uint64_t)(uintptr_t)&run);
    if (run.timed_out)
        guest_fail(EXIT_TIMEOUT, "vsock: the device took no packet within ~2 s (%lu of %lu taken)", run.done, packets);
    console_printf("vsock_flood: sent %lu packets\n", run.done);

    /* What waited: every reply, until the device has been quiet for a while. */
    for (unsigned i = 0; i < RX_BUFFERS; ++i)
        post_rx(&rx[i]);
    virtqueue_kick(&queues[RXQ]);
    unsigned resets = 0, updates = 0, other = 0;
    while (resets + updates + other <= MAX_REPLIES && (reply = receive(rdtsc() + QUIET_CYCLES))) {
        if (reply->header.op == OP_RST)
            ++resets;
        else if (reply->header.op == OP_CREDIT_UPDATE)
            ++updates;
        else
            ++other;
        post_rx(reply);
        virtqueue_kick(&queues[RXQ]);
    }
    if (resets + updates + other > MAX_REPLIES)
        guest_fail(EXIT_TOO_MANY_REPLIES, "vsock: more than %u replies waited", MAX_REPLIES);
    console_printf("vsock_flood: %u replies waited (RST %u, CREDIT_UPDATE %u, other %u)\n", resets + updates + other, resets, updates,
                   other);

    tx.header = header(OP_RW, port, 4);
    memcpy(tx.data, "ping", 4);
    send_tx();
    while ((reply = receive(rdtsc() + TIMEOUT_CYCLES))) {
        if (reply->header.op == OP_RW && reply->header.src_port == port && reply->header.len == 4 && memcmp(reply->data, "ping", 4) == 0)
            break;
        post_rx(reply);
        virtqueue_kick(&queues[RXQ]);
    }
    if (!reply)
        guest_fail(EXIT_TIMEOUT, "vsock: no echo of \"ping\" within ~2 s");
    console_printf("vsock_flood: echo ok\n");
    guest_exit(GUEST_EXIT_OK);
}
