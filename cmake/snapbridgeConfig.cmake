# find_package(snapbridge) support: the imported target snapbridge::snapbridge
# (the shared library; its include directory comes with it). The public
# headers need no other package, and the library's own dependencies (urcu,
# ck, msgpack-c) are linked into it, so nothing else is found here.
include("${CMAKE_CURRENT_LIST_DIR}/snapbridgeTargets.cmake")
