// The main of a fuzz target built without libFuzzer (GCC, the normal test suite): runs
// LLVMFuzzerTestOneInput once per file of the directories or files named on the command line,
// so the committed corpus and regression inputs replay under the plain, ASan and TSan configs. A
// target that aborts fails the test; a directory argument that holds no input fails it too (a
// corpus that went missing must not pass silently).
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

bool isDirectory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The regular files under `dir`, recursively, sorted (a stable replay order).
void listFiles(const std::string& dir, std::vector<std::string>* out) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = dir + "/" + name;
    if (isDirectory(path)) {
      listFiles(path, out);
    } else {
      out->push_back(path);
    }
  }
  closedir(d);
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR_OR_FILE...  (replays each input through the fuzz target)\n",
                 argv[0]);
    return 2;
  }
  size_t total = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::vector<std::string> files;
    if (isDirectory(arg)) {
      listFiles(arg, &files);
      std::sort(files.begin(), files.end());
      if (files.empty()) {
        std::fprintf(stderr, "replay: %s holds no input\n", arg.c_str());
        return 1;
      }
    } else {
      files.push_back(arg);
    }
    for (const std::string& path : files) {
      std::ifstream in(path, std::ios::binary);
      if (!in) {
        std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
        return 1;
      }
      std::ostringstream ss;
      ss << in.rdbuf();
      std::string bytes = ss.str();
      LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      ++total;
    }
    std::printf("replay: %s: %zu inputs\n", arg.c_str(), files.size());
  }
  std::printf("replay: %zu inputs, all passed\n", total);
  return 0;
}
