#pragma once

// Runs the kasou binary as a child process for integration tests: arguments in, exit status and
// everything it printed out, with a deadline after which the child is killed and the test fails.

#include <chrono>
#include <string>
#include <sys/types.h>
#include <vector>

namespace kasou::test {

// A fresh temporary directory, removed with its contents when the object is destroyed.
class TemporaryDirectory {
public:
    TemporaryDirectory();
    ~TemporaryDirectory();
    std::string const& path() const { return m_path; }
    std::string file(std::string const& name) const { return m_path + "/" + name; }

private:
    std::string m_path;
};

struct ProcessResult {
    int status { -1 };        // exit status, or -1 when killed by a signal
    int signal { 0 };         // the signal that ended it, if any
    bool timed_out { false }; // killed because the deadline passed
    std::string out;
    std::string err;
    std::chrono::milliseconds elapsed {};
};

// A started child whose output is collected into files; wait() reaps it.
class KasouProcess {
public:
    explicit KasouProcess(std::vector<std::string> const& arguments);
    ~KasouProcess();
    KasouProcess(KasouProcess const&) = delete;
    KasouProcess& operator=(KasouProcess const&) = delete;

    pid_t pid() const { return m_pid; }
    // True once the child's standard output contains `text` (polled until the deadline).
    bool wait_for_output(std::string const& text, std::chrono::milliseconds deadline);
    void send_signal(int signal);
    ProcessResult wait(std::chrono::milliseconds deadline);

private:
    TemporaryDirectory m_files; // the child's standard output and error
    pid_t m_pid { -1 };
    std::chrono::steady_clock::time_point m_start;
};

// Runs kasou with `arguments` to completion.
ProcessResult run_kasou(std::vector<std::string> const& arguments, std::chrono::milliseconds deadline = std::chrono::seconds(60));

void write_file(std::string const& path, std::string const& contents);

// False on AMD SVM hosts (kvm_amd): KVM puts a vCPU back into its reset state when the guest shuts
// down (a triple fault), so the registers at the fault cannot be reported there.
bool host_keeps_state_across_shutdown();

// True when the test runs inside the nested test host (kvm_host.sh sets KASOU_NESTED_TEST_HOST),
// where QEMU's software CPU emulates every instruction and long guest loops are cut short.
bool in_nested_test_host();
std::string read_file(std::string const& path);

} // namespace kasou::test
