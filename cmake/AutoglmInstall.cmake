# Install layout and the Debian package (CPack DEB). Owned by the deploy thread.
# `cmake --install build --prefix P` gives the standard layout:
#   P/bin/autoglm            the engine and server
#   P/bin/autoglm-start      validates config/autoglm.yaml and the model, then serves
#   P/config/autoglm.yaml    the annotated default configuration
#   P/logs/                  where autoglm-start sends the server's log lines
#   P/lib/                   shared libraries (none today: everything links statically)
# The .deb installs the same tree under /opt/autoglm.
include(GNUInstallDirs)

# `cpack` and `ninja install` install what is built and do not first build every target (tests,
# benchmarks): the .deb test packages the binary ctest already has, in seconds.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

install(TARGETS autoglm RUNTIME DESTINATION bin COMPONENT runtime)
install(PROGRAMS ${PROJECT_SOURCE_DIR}/scripts/autoglm-start DESTINATION bin COMPONENT runtime)
install(FILES ${PROJECT_SOURCE_DIR}/config/autoglm.yaml DESTINATION config COMPONENT runtime)
# Empty directories still belong to the layout (logs are written here; lib/ for shared libraries).
install(DIRECTORY DESTINATION logs COMPONENT runtime)
install(DIRECTORY DESTINATION lib COMPONENT runtime)

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "autoglm")
set(CPACK_PACKAGE_VENDOR "Open-AutoGLM")
set(CPACK_PACKAGE_CONTACT "Open-AutoGLM maintainers <maintainers@open-autoglm.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "LLM inference engine and OpenAI-compatible server for GLM-family models")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX "/opt/autoglm")
set(CPACK_DEBIAN_PACKAGE_SECTION "science")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# The Debian packages of the libraries the binary links dynamically. Listed rather than found by
# dpkg-shlibdeps because a CUDA build also links cuBLASLt from the NVIDIA toolkit, which no Debian
# package provides (dpkg-shlibdeps fails on it); on a GPU host the CUDA runtime base image or the
# driver install supplies it. tests/deploy/test_install_deb.py checks this list against ldd.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS OFF)
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "libc6, libstdc++6, libgcc-s1, libyaml-cpp0.7, libpcre2-8-0, libutf8proc2, libspdlog1.10, \
libfmt9, libssl3, libhiredis0.14")
include(CPack)
