#!/usr/bin/env bash
# Builds and runs the C-side tests against the shared library libpastry.so:
#   1. the C tests (tests/c/test_*.c) as C11 with -Wall -Wextra -Werror -pedantic;
#   2. the same sources compiled as C++17 (the header works from C++);
#   3. the same C tests under AddressSanitizer + UndefinedBehaviorSanitizer (leak checks on);
#   4. the same C tests, the C++ wrapper's test and the C example under valgrind memcheck
#      (no leak, no invalid access), with tests/c/valgrind.supp: the one documented
#      suppression, for Rust std's handle of a foreign thread (see that file and the README);
#   5. the C++ RAII wrapper's test (bindings/cpp/pastry.hpp), also under the sanitizers;
#   6. the C example (examples/ring.c).
#
# Usage: PASTRY_LIB_DIR=<directory holding libpastry.so> tests/c/run.sh [build-dir]
# (.ci/test builds the library once and passes its directory.)
set -euo pipefail
cd "$(dirname "$0")/../.."

lib_dir=${PASTRY_LIB_DIR:?set PASTRY_LIB_DIR to the directory holding libpastry.so}
out=${1:-${CARGO_TARGET_DIR:-target}/c-tests}
mkdir -p "$out"
[ -f "$lib_dir/libpastry.so" ] || { echo "no libpastry.so in $lib_dir" >&2; exit 1; }

tests=(api overlay driven misuse)
warn=(-Wall -Wextra -Werror -pedantic)
link=(-Iinclude -Itests/c -L"$lib_dir" -lpastry -Wl,-rpath,"$lib_dir" -pthread)
passed=0
failed=0

run() { # name, command...
    local name=$1
    shift
    local t0=$SECONDS
    if "$@"; then
        passed=$((passed + 1))
        echo "   ok   $name ($((SECONDS - t0)) s)"
    else
        failed=$((failed + 1))
        echo "   FAIL $name" >&2
    fi
}

echo "-- building (C11, C++17, ASan+UBSan, plain for valgrind)"
for t in "${tests[@]}"; do
    gcc -std=c11 "${warn[@]}" -g -O1 "tests/c/test_$t.c" "${link[@]}" -o "$out/c_$t"
    g++ -x c++ -std=c++17 "${warn[@]}" -g -O1 "tests/c/test_$t.c" "${link[@]}" -o "$out/cpp_$t"
    gcc -std=c11 "${warn[@]}" -g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
        -fno-sanitize-recover=undefined "tests/c/test_$t.c" "${link[@]}" -o "$out/asan_$t"
done
g++ -std=c++17 "${warn[@]}" -g -O1 -Ibindings/cpp tests/c/test_wrapper.cpp "${link[@]}" \
    -o "$out/cpp_wrapper"
g++ -std=c++17 "${warn[@]}" -g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
    -fno-sanitize-recover=undefined -Ibindings/cpp tests/c/test_wrapper.cpp "${link[@]}" \
    -o "$out/asan_cpp_wrapper"
gcc -std=c11 "${warn[@]}" -O1 examples/ring.c "${link[@]}" -o "$out/ring"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# Leak reports inside Rust std's thread-locals would be listed here (none are needed today).
export LSAN_OPTIONS=suppressions=$PWD/tests/c/lsan.supp:print_suppressions=0

echo "-- C11"
for t in "${tests[@]}"; do run "c/$t" "$out/c_$t"; done
echo "-- C++17 (the same sources)"
for t in "${tests[@]}"; do run "c++/$t" "$out/cpp_$t"; done
echo "-- AddressSanitizer + UndefinedBehaviorSanitizer"
for t in "${tests[@]}"; do run "asan/$t" "$out/asan_$t"; done
run "asan/cpp_wrapper" "$out/asan_cpp_wrapper"
echo "-- valgrind memcheck"
vg=(env PASTRY_TEST_TIMEOUT=600 valgrind -q --leak-check=full
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=1
    --suppressions=tests/c/valgrind.supp)
for t in "${tests[@]}"; do run "valgrind/$t" "${vg[@]}" "$out/c_$t"; done
run "valgrind/cpp_wrapper" "${vg[@]}" "$out/cpp_wrapper"
run "valgrind/examples/ring" "${vg[@]}" "$out/ring"
echo "-- C++ wrapper"
run "cpp_wrapper" "$out/cpp_wrapper"
echo "-- example"
run "examples/ring" "$out/ring"

echo "C-tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
