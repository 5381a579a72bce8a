/* The virtio-console check (virtio 1.2, 5.3): one line written on port 0's transmit queue
 * (queue 1; MULTIPORT is not negotiated, so port 0 is the only port). */
#include "checks.h"
#include "console.h"

#define CONSOLE_RECEIVE_QUEUE 0
#define CONSOLE_TRANSMIT_QUEUE 1
#define CONSOLE_QUEUES 2

static struct virtio_pci_device console;
static struct virtqueue console_queues[CONSOLE_QUEUES];
static char const line[] = "virtio_smoke: hello on virtio-console port 0\n";

void console_check(struct pci_function *f, uint8_t vector)
{
    open_device(&console, f, VIRTIO_F_EVENT_IDX, console_queues, CONSOLE_QUEUES, 8, vector);
    struct virtqueue *tx = &console_queues[CONSOLE_TRANSMIT_QUEUE];
    struct virtq_buffer b = { line, sizeof line - 1, false };
    virtqueue_add(tx, &b, 1, false, (void *)line);
    virtqueue_kick(tx);
    wait_and_reap(tx, "virtio-console transmit");
    console_printf("virtio-console: wrote %u bytes on port 0\n", (unsigned)(sizeof line - 1));
    virtio_pci_reset(&console);
}
