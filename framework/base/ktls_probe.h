// Whether this kernel offers kernel TLS, found once per process on a loopback connection.
//
//   Status s = kernelTlsSupport();        // ok, or e.g. "setsockopt TCP_ULP tls: No such file
//                                          // or directory (the kernel has no TLS module)"
//
// Thread-safe; the first call probes (a few system calls), later calls return the cached answer.
#pragma once

#include "framework/base/status.h"

namespace whorl {

const Status& kernelTlsSupport();

}  // namespace whorl
