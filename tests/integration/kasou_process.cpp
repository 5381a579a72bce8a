#include "kasou_process.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace kasou::test {

KasouProcess::KasouProcess(std::vector<std::string> const& arguments)
    : m_start(std::chrono::steady_clock::now())
{
    std::vector<char*> argv;
    std::string binary = KASOU_BINARY;
    argv.push_back(binary.data());
    std::vector<std::string> copies = arguments;
    // The guest tests run once per irqchip mode and execution engine: KASOU_TEST_IRQCHIP and
    // KASOU_TEST_ACCEL pick them for every `kasou run` that does not name its own.
    bool is_run = std::find(copies.begin(), copies.end(), "run") != copies.end();
    for (auto [variable, option] : { std::pair { "KASOU_TEST_IRQCHIP", "--irqchip" }, std::pair { "KASOU_TEST_ACCEL", "--accel" } }) {
        char const* value = std::getenv(variable);
        if (value && *value && is_run && std::find(copies.begin(), copies.end(), option) == copies.end()) {
            copies.push_back(option);
            copies.push_back(value);
        }
    }
    for (auto& argument : copies)
        argv.push_back(argument.data());
    argv.push_back(nullptr);
    std::string out_path = m_files.file("out");
    std::string err_path = m_files.file("err");
    m_pid = ::fork();
    if (m_pid < 0)
        throw std::runtime_error("fork failed");
    if (m_pid == 0) {
        int null = ::open("/dev/null", O_RDONLY);
        int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ::dup2(null, STDIN_FILENO);
        ::dup2(out, STDOUT_FILENO);
        ::dup2(err, STDERR_FILENO);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
}

KasouProcess::~KasouProcess()
{
    if (m_pid > 0) {
        ::kill(m_pid, SIGKILL);
        ::waitpid(m_pid, nullptr, 0);
    }
}

bool KasouProcess::wait_for_output(std::string const& text, std::chrono::milliseconds deadline)
{
    auto until = std::chrono::steady_clock::now() + deadline;
    while (std::chrono::steady_clock::now() < until) {
        if (read_file(m_files.file("out")).find(text) != std::string::npos)
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

void KasouProcess::send_signal(int signal)
{
    if (m_pid > 0)
        ::kill(m_pid, signal);
}

ProcessResult KasouProcess::wait(std::chrono::milliseconds deadline)
{
    ProcessResult result;
    auto until = std::chrono::steady_clock::now() + deadline;
    int status = 0;
    for (;;) {
        pid_t done = ::waitpid(m_pid, &status, WNOHANG);
        if (done == m_pid)
            break;
        if (std::chrono::steady_clock::now() >= until) {
            result.timed_out = true;
            ::kill(m_pid, SIGKILL);
            ::waitpid(m_pid, &status, 0);
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    m_pid = -1;
    result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - m_start);
    if (WIFEXITED(status))
        result.status = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        result.signal = WTERMSIG(status);
    result.out = read_file(m_files.file("out"));
    result.err = read_file(m_files.file("err"));
    return result;
}

ProcessResult run_kasou(std::vector<std::string> const& arguments, std::chrono::milliseconds deadline)
{
    KasouProcess process(arguments);
    return process.wait(deadline);
}

TemporaryDirectory::TemporaryDirectory()
{
    std::string pattern = (std::filesystem::temp_directory_path() / "kasou-test-XXXXXX").string();
    if (!::mkdtemp(pattern.data()))
        throw std::runtime_error("mkdtemp failed");
    m_path = pattern;
}

TemporaryDirectory::~TemporaryDirectory()
{
    std::error_code ignored;
    std::filesystem::remove_all(m_path, ignored);
}

void write_file(std::string const& path, std::string const& contents)
{
    std::ofstream(path, std::ios::binary) << contents;
}

std::string read_file(std::string const& path)
{
    std::ifstream file(path, std::ios::binary);
    std::stringstream buffer;
    buffer << file.rdbuf();
    return buffer.str();
}

bool host_keeps_state_across_shutdown() { return ::access("/sys/module/kvm_amd", F_OK) != 0; }

bool in_nested_test_host() { return std::getenv("KASOU_NESTED_TEST_HOST") != nullptr; }

} // namespace kasou::test
