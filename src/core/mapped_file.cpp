// See mapped_file.h.
#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace autoglm {
namespace {

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

int open_regular(const std::string& path, off_t* size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(ErrorCode::kNotFound, path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(ErrorCode::kInvalidModel, path + ": not a regular file");
  }
  *size = st.st_size;
  return fd;
}

}  // namespace

MappedFile MappedFile::open(const std::string& path) {
  off_t size = 0;
  Fd fd{open_regular(path, &size)};
  MappedFile m;
  m.path_ = path;
  m.size_ = static_cast<size_t>(size);
  if (m.size_ == 0) return m;  // mmap of length 0 is invalid; an empty span is fine.
  void* p = ::mmap(nullptr, m.size_, PROT_READ, MAP_PRIVATE, fd.fd, 0);
  if (p == MAP_FAILED)
    fail(ErrorCode::kInvalidModel, path + ": mmap failed: " + std::strerror(errno));
  m.data_ = static_cast<const uint8_t*>(p);
  return m;
}

MappedFile::MappedFile(MappedFile&& o) noexcept
    : data_(o.data_), size_(o.size_), path_(std::move(o.path_)) {
  o.data_ = nullptr;
  o.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    this->~MappedFile();
    data_ = o.data_;
    size_ = o.size_;
    path_ = std::move(o.path_);
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
  data_ = nullptr;
}

std::string read_file_capped(const std::string& path, size_t max_bytes) {
  off_t size = 0;
  Fd fd{open_regular(path, &size)};
  if (static_cast<uint64_t>(size) > max_bytes) {
    fail(ErrorCode::kResourceExhausted, path + ": file is " + std::to_string(size) +
                                            " bytes, over the limit of " +
                                            std::to_string(max_bytes));
  }
  std::string out(static_cast<size_t>(size), '\0');
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::read(fd.fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(ErrorCode::kInvalidModel, path + ": read failed");
    done += static_cast<size_t>(n);
  }
  return out;
}

}  // namespace autoglm
