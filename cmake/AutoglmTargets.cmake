# Shared compile settings for every project target: warnings as errors, sanitizers, and the
# helpers that subsystems use to declare libraries, tests and fuzz targets.
add_library(autoglm_options INTERFACE)
target_compile_options(autoglm_options INTERFACE -Wall -Wextra -Werror)
target_include_directories(autoglm_options INTERFACE ${PROJECT_SOURCE_DIR}/src
                                                     ${PROJECT_SOURCE_DIR}/include)

# Unity builds (make sets CMAKE_UNITY_BUILD: each batch of a target's sources compiles as one
# translation unit, so the heavy headers, CLI11's above all, are parsed and instantiated once per
# batch rather than once per file) make gcc see a .cpp's anonymous-namespace types as if they came
# from a header and warn that a class defined there uses them (-Wsubobject-linkage). That is only
# true of headers; in a unity batch it is harmless.
if(CMAKE_UNITY_BUILD AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(autoglm_options INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Wno-subobject-linkage>)
endif()

if(AUTOGLM_SANITIZE)
  target_compile_options(autoglm_options INTERFACE -fsanitize=${AUTOGLM_SANITIZE}
                                                   -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(autoglm_options INTERFACE -fsanitize=${AUTOGLM_SANITIZE})
endif()
if(AUTOGLM_FUZZ)
  target_compile_options(autoglm_options INTERFACE -fsanitize=fuzzer-no-link,address,undefined
                                                   -fno-omit-frame-pointer)
  target_link_options(autoglm_options INTERFACE -fsanitize=address,undefined)
endif()

# autoglm_library(NAME SOURCES... DEPS ...): one library per src/ subsystem.
function(autoglm_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_link_libraries(${name} PUBLIC autoglm_options ${ARG_DEPS})
endfunction()

# autoglm_test(NAME SOURCES... DEPS ... [LABELS ...]): a GoogleTest binary registered with ctest.
function(autoglm_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE autoglm_options ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    AUTOGLM_SOURCE_DIR="${PROJECT_SOURCE_DIR}" AUTOGLM_FIXTURES_DIR="${PROJECT_SOURCE_DIR}/tests/fixtures")
  include(GoogleTest)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "unit;${ARG_LABELS}")
  # Collected into the unit_tests target (tests/CMakeLists.txt): what `ctest -L unit` needs.
  set_property(GLOBAL APPEND PROPERTY AUTOGLM_UNIT_TEST_TARGETS ${name})
endfunction()

# autoglm_fuzz_target(NAME SOURCE DEPS ...): a libFuzzer binary (clang, AUTOGLM_FUZZ=ON only).
function(autoglm_fuzz_target name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE autoglm_options ${ARG_DEPS})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
endfunction()
