#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "devices/serial_16550.h"

using namespace kasou;
using kasou::devices::Serial16550;

namespace {

struct SerialFixture : ::testing::Test {
    std::string output;
    std::vector<bool> irq_edges;
    Serial16550 serial { [this](std::span<u8 const> bytes) { output.append(bytes.begin(), bytes.end()); },
        [this](bool level) { irq_edges.push_back(level); } };

    u8 in(u64 offset)
    {
        u8 value = 0;
        serial.read(offset, std::span(&value, 1));
        return value;
    }
    void out(u64 offset, u8 value) { serial.write(offset, std::span(&value, 1)); }
};

} // namespace

TEST_F(SerialFixture, TransmitsAtOnce)
{
    for (char c : std::string("ok\n"))
        out(0, static_cast<u8>(c));
    EXPECT_EQ(output, "ok\n");
    EXPECT_EQ(in(5) & 0x60, 0x60) << "transmitter always empty";
    EXPECT_TRUE(irq_edges.empty()) << "no interrupt unless enabled";
}

TEST_F(SerialFixture, ReceivesInputWithInterrupt)
{
    out(1, 0x01); // IER: received data
    u8 const typed[] = { 'a', 'b' };
    serial.enqueue_input(typed);
    ASSERT_EQ(irq_edges, std::vector<bool> { true });
    EXPECT_EQ(in(2) & 0x0F, 0x04) << "IIR: received data";
    EXPECT_EQ(in(5) & 1, 1) << "LSR: data ready";
    EXPECT_EQ(in(0), 'a');
    EXPECT_EQ(in(0), 'b');
    EXPECT_EQ(in(5) & 1, 0);
    EXPECT_EQ(irq_edges, (std::vector<bool> { true, false }));
    EXPECT_EQ(in(2) & 0x0F, 0x01) << "no interrupt pending";
}

TEST_F(SerialFixture, TransmitterEmptyInterruptIsAcknowledgedByIirRead)
{
    out(1, 0x02);
    ASSERT_EQ(irq_edges, std::vector<bool> { true });
    EXPECT_EQ(in(2) & 0x0F, 0x02);
    EXPECT_EQ(irq_edges, (std::vector<bool> { true, false }));
    out(0, 'x');
    EXPECT_EQ(irq_edges, (std::vector<bool> { true, false, true })) << "a new edge after each write";
}

TEST_F(SerialFixture, DivisorLatchAndScratch)
{
    out(3, 0x80);
    out(0, 0x01);
    out(1, 0x02);
    EXPECT_EQ(in(0), 0x01);
    EXPECT_EQ(in(1), 0x02);
    out(3, 0x03);
    EXPECT_EQ(in(1), 0x00) << "IER again once DLAB is off";
    EXPECT_TRUE(output.empty()) << "divisor writes are not output";
    out(7, 0x5a);
    EXPECT_EQ(in(7), 0x5a);
}

TEST_F(SerialFixture, LoopbackReturnsWrittenBytes)
{
    out(4, 0x10 | 0x0B); // loopback, OUT2, RTS, DTR
    out(0, 0x42);
    EXPECT_TRUE(output.empty());
    EXPECT_EQ(in(0), 0x42);
    EXPECT_EQ(in(6) & 0xF0, 0xB0) << "DCD, DSR and CTS follow OUT2, DTR and RTS";
}

TEST_F(SerialFixture, InputIsBounded)
{
    std::vector<u8> flood(Serial16550::INPUT_LIMIT + 100, 'z');
    serial.enqueue_input(flood);
    size_t received = 0;
    while (in(5) & 1) {
        in(0);
        ++received;
    }
    EXPECT_EQ(received, Serial16550::INPUT_LIMIT);
}
