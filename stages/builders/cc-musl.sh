# cc-musl: gcc 3.4.6 as `cc`/`gcc`, compiling and linking static programs against the musl
# built by gcc, its headers and the Linux headers, and nothing else (as Nix's cc-wrapper does).
gcc_include=$(echo "$gcc_core"/lib/gcc/x86_64-pc-linux-gnu/*/include)
mkdir -p "$out/bin"
for tool in gcc cc; do
    cat > "$out/bin/$tool" <<EOS
#!$SHELL
exec $gcc_core/bin/gcc -nostdinc -isystem $gcc_include -isystem $musl/include \\
    -isystem $linux_headers/include -B$musl/lib/ -L$musl/lib -static "\$@"
EOS
    chmod +x "$out/bin/$tool"
done
