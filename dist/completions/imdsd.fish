# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_imdsd_global_optspecs
    string join \n h/help V/version
end

function __fish_imdsd_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_imdsd_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_imdsd_using_subcommand
    set -l cmd (__fish_imdsd_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c imdsd -n "__fish_imdsd_needs_command" -s h -l help -d 'Print help'
complete -c imdsd -n "__fish_imdsd_needs_command" -s V -l version -d 'Print version'
complete -c imdsd -n "__fish_imdsd_needs_command" -f -a "run" -d 'Run the daemon in the foreground'
complete -c imdsd -n "__fish_imdsd_needs_command" -f -a "check" -d 'Validate a config file: exit 0, or print every problem and exit 64. With no config file anywhere, say what `imdsd run` would serve'
complete -c imdsd -n "__fish_imdsd_needs_command" -f -a "mfa" -d 'Hand an MFA code to a role of the running daemon that needs one'
complete -c imdsd -n "__fish_imdsd_needs_command" -f -a "refresh" -d 'Refresh roles now (all of them when none is named), wait for the outcome and print it; exit 1 if any did not refresh. For after `aws sso login`, a fixed trust policy or a rotated key'
complete -c imdsd -n "__fish_imdsd_needs_command" -f -a "status" -d 'Show what the running daemon is doing: roles, expiry, errors, listeners and request counts'
complete -c imdsd -n "__fish_imdsd_needs_command" -f -a "exec" -d 'Run a command with a role\'s credentials: it finds them through the container endpoint and the role\'s token file (or the IMDS endpoint), never in its environment. Without a command, it starts $SHELL with the role (as `aws-vault exec` does)'
complete -c imdsd -n "__fish_imdsd_needs_command" -f -a "env" -d 'Print the environment variables `exec` sets for a role (no secrets), for `eval "$(imdsd env dev)"`'
complete -c imdsd -n "__fish_imdsd_needs_command" -f -a "credential-process" -d 'Print a role\'s current credentials in the `credential_process` format, for `credential_process = imdsd credential-process ROLE` in `~/.aws/config`'
complete -c imdsd -n "__fish_imdsd_needs_command" -f -a "login" -d 'Open the AWS console signed in as a role, with its current session credentials (through the AWS federation endpoint; the URL holds a one-time sign-in token, never the credentials)'
complete -c imdsd -n "__fish_imdsd_needs_command" -f -a "health" -d 'Exit 0 if the daemon answers (with --ready: and every served role has usable credentials); for probes'
complete -c imdsd -n "__fish_imdsd_needs_command" -f -a "setup" -d 'Set imdsd up for this user on a developer machine: write ~/.config/imdsd/imdsd.toml serving the current AWS profile (unless a config exists), install and enable the `systemctl --user` unit, and print the line to add to the shell profile. Safe to run again'
complete -c imdsd -n "__fish_imdsd_needs_command" -f -a "import" -d 'Move AWS profiles\' long-term keys out of plaintext: into the desktop\'s Secret Service (GNOME Keyring, KWallet, KeePassXC), removing them from ~/.aws/credentials and adding `credential_process = imdsd credential-process PROFILE` to the profile in ~/.aws/config; or, with `--to systemd-creds`, into encrypted systemd credentials for the system service. Never prints a key; running it again changes nothing'
complete -c imdsd -n "__fish_imdsd_needs_command" -f -a "rotate" -d 'Rotate a profile\'s IAM access key (as `aws-vault rotate`): create a new key with the current one, store it where the old one lives (the Secret Service or ~/.aws/credentials), check it works, delete the old key, and refresh the running daemon\'s roles that use it. If any step fails, the old key stays in place and usable'
complete -c imdsd -n "__fish_imdsd_needs_command" -f -a "completions" -d 'Print a shell completion script, e.g. `imdsd completions bash > ~/.local/share/bash-completion/completions/imdsd`'
complete -c imdsd -n "__fish_imdsd_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c imdsd -n "__fish_imdsd_using_subcommand run" -s c -l config -d 'Config file (default: $IMDSD_CONFIG, then $XDG_CONFIG_HOME/imdsd/imdsd.toml, then /etc/imdsd/imdsd.toml)' -r -F
complete -c imdsd -n "__fish_imdsd_using_subcommand run" -s h -l help -d 'Print help'
complete -c imdsd -n "__fish_imdsd_using_subcommand check" -s c -l config -d 'Config file (same default as `run`)' -r -F
complete -c imdsd -n "__fish_imdsd_using_subcommand check" -s h -l help -d 'Print help'
complete -c imdsd -n "__fish_imdsd_using_subcommand mfa" -l socket -d 'The daemon\'s control socket (same default as `status`)' -r -F
complete -c imdsd -n "__fish_imdsd_using_subcommand mfa" -s h -l help -d 'Print help'
complete -c imdsd -n "__fish_imdsd_using_subcommand refresh" -l socket -d 'The daemon\'s control socket (same default as `status`)' -r -F
complete -c imdsd -n "__fish_imdsd_using_subcommand refresh" -s h -l help -d 'Print help'
complete -c imdsd -n "__fish_imdsd_using_subcommand status" -l socket -d 'The daemon\'s control socket (default: $IMDSD_CONTROL_SOCKET, then $XDG_RUNTIME_DIR/imdsd/control.sock, then /run/imdsd/control.sock)' -r -F
complete -c imdsd -n "__fish_imdsd_using_subcommand status" -l json -d 'Print JSON instead of a table'
complete -c imdsd -n "__fish_imdsd_using_subcommand status" -s h -l help -d 'Print help'
complete -c imdsd -n "__fish_imdsd_using_subcommand exec" -l socket -d 'The daemon\'s control socket (same default as `status`)' -r -F
complete -c imdsd -n "__fish_imdsd_using_subcommand exec" -s h -l help -d 'Print help'
complete -c imdsd -n "__fish_imdsd_using_subcommand env" -l format -d 'Shell syntax, or one JSON object (unset variables are null)' -r -f -a "sh\t'`export NAME=\'value\'` and `unset NAME` (sh, bash, zsh)'
fish\t'`set -gx NAME \'value\'` and `set -e NAME`'
json\t'`{"NAME": "value", "UNSET": null}`'"
complete -c imdsd -n "__fish_imdsd_using_subcommand env" -l socket -d 'The daemon\'s control socket (same default as `status`)' -r -F
complete -c imdsd -n "__fish_imdsd_using_subcommand env" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c imdsd -n "__fish_imdsd_using_subcommand credential-process" -l socket -d 'The daemon\'s control socket (same default as `status`)' -r -F
complete -c imdsd -n "__fish_imdsd_using_subcommand credential-process" -s h -l help -d 'Print help'
complete -c imdsd -n "__fish_imdsd_using_subcommand login" -l destination -d 'Where the console opens (default: the console home of the daemon\'s region)' -r
complete -c imdsd -n "__fish_imdsd_using_subcommand login" -l socket -d 'The daemon\'s control socket (same default as `status`)' -r -F
complete -c imdsd -n "__fish_imdsd_using_subcommand login" -l print -d 'Print the sign-in URL instead of opening it with xdg-open'
complete -c imdsd -n "__fish_imdsd_using_subcommand login" -s h -l help -d 'Print help'
complete -c imdsd -n "__fish_imdsd_using_subcommand health" -l socket -d 'The daemon\'s control socket (same default as `status`)' -r -F
complete -c imdsd -n "__fish_imdsd_using_subcommand health" -l ready -d 'Also require usable credentials for every served role'
complete -c imdsd -n "__fish_imdsd_using_subcommand health" -s h -l help -d 'Print help'
complete -c imdsd -n "__fish_imdsd_using_subcommand setup" -l user -d 'For the current user (`systemctl --user`); the only mode'
complete -c imdsd -n "__fish_imdsd_using_subcommand setup" -l dry-run -d 'Print what would be done, change nothing'
complete -c imdsd -n "__fish_imdsd_using_subcommand setup" -s h -l help -d 'Print help'
complete -c imdsd -n "__fish_imdsd_using_subcommand import" -l to -d 'Where the keys go' -r -f -a "keyring\t'The desktop\'s Secret Service, over D-Bus; the daemon reads the keys there'
systemd-creds\t'An encrypted systemd credential (`LoadCredentialEncrypted=`)'"
complete -c imdsd -n "__fish_imdsd_using_subcommand import" -l output-dir -d 'With `--to systemd-creds`: where the encrypted files go (default: /etc/imdsd)' -r -F
complete -c imdsd -n "__fish_imdsd_using_subcommand import" -l dry-run -d 'Print what would be done, change nothing'
complete -c imdsd -n "__fish_imdsd_using_subcommand import" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c imdsd -n "__fish_imdsd_using_subcommand rotate" -l socket -d 'The daemon\'s control socket (same default as `status`)' -r -F
complete -c imdsd -n "__fish_imdsd_using_subcommand rotate" -s h -l help -d 'Print help'
complete -c imdsd -n "__fish_imdsd_using_subcommand completions" -s h -l help -d 'Print help'
complete -c imdsd -n "__fish_imdsd_using_subcommand help; and not __fish_seen_subcommand_from run check mfa refresh status exec env credential-process login health setup import rotate completions help" -f -a "run" -d 'Run the daemon in the foreground'
complete -c imdsd -n "__fish_imdsd_using_subcommand help; and not __fish_seen_subcommand_from run check mfa refresh status exec env credential-process login health setup import rotate completions help" -f -a "check" -d 'Validate a config file: exit 0, or print every problem and exit 64. With no config file anywhere, say what `imdsd run` would serve'
complete -c imdsd -n "__fish_imdsd_using_subcommand help; and not __fish_seen_subcommand_from run check mfa refresh status exec env credential-process login health setup import rotate completions help" -f -a "mfa" -d 'Hand an MFA code to a role of the running daemon that needs one'
complete -c imdsd -n "__fish_imdsd_using_subcommand help; and not __fish_seen_subcommand_from run check mfa refresh status exec env credential-process login health setup import rotate completions help" -f -a "refresh" -d 'Refresh roles now (all of them when none is named), wait for the outcome and print it; exit 1 if any did not refresh. For after `aws sso login`, a fixed trust policy or a rotated key'
complete -c imdsd -n "__fish_imdsd_using_subcommand help; and not __fish_seen_subcommand_from run check mfa refresh status exec env credential-process login health setup import rotate completions help" -f -a "status" -d 'Show what the running daemon is doing: roles, expiry, errors, listeners and request counts'
complete -c imdsd -n "__fish_imdsd_using_subcommand help; and not __fish_seen_subcommand_from run check mfa refresh status exec env credential-process login health setup import rotate completions help" -f -a "exec" -d 'Run a command with a role\'s credentials: it finds them through the container endpoint and the role\'s token file (or the IMDS endpoint), never in its environment. Without a command, it starts $SHELL with the role (as `aws-vault exec` does)'
complete -c imdsd -n "__fish_imdsd_using_subcommand help; and not __fish_seen_subcommand_from run check mfa refresh status exec env credential-process login health setup import rotate completions help" -f -a "env" -d 'Print the environment variables `exec` sets for a role (no secrets), for `eval "$(imdsd env dev)"`'
complete -c imdsd -n "__fish_imdsd_using_subcommand help; and not __fish_seen_subcommand_from run check mfa refresh status exec env credential-process login health setup import rotate completions help" -f -a "credential-process" -d 'Print a role\'s current credentials in the `credential_process` format, for `credential_process = imdsd credential-process ROLE` in `~/.aws/config`'
complete -c imdsd -n "__fish_imdsd_using_subcommand help; and not __fish_seen_subcommand_from run check mfa refresh status exec env credential-process login health setup import rotate completions help" -f -a "login" -d 'Open the AWS console signed in as a role, with its current session credentials (through the AWS federation endpoint; the URL holds a one-time sign-in token, never the credentials)'
complete -c imdsd -n "__fish_imdsd_using_subcommand help; and not __fish_seen_subcommand_from run check mfa refresh status exec env credential-process login health setup import rotate completions help" -f -a "health" -d 'Exit 0 if the daemon answers (with --ready: and every served role has usable credentials); for probes'
complete -c imdsd -n "__fish_imdsd_using_subcommand help; and not __fish_seen_subcommand_from run check mfa refresh status exec env credential-process login health setup import rotate completions help" -f -a "setup" -d 'Set imdsd up for this user on a developer machine: write ~/.config/imdsd/imdsd.toml serving the current AWS profile (unless a config exists), install and enable the `systemctl --user` unit, and print the line to add to the shell profile. Safe to run again'
complete -c imdsd -n "__fish_imdsd_using_subcommand help; and not __fish_seen_subcommand_from run check mfa refresh status exec env credential-process login health setup import rotate completions help" -f -a "import" -d 'Move AWS profiles\' long-term keys out of plaintext: into the desktop\'s Secret Service (GNOME Keyring, KWallet, KeePassXC), removing them from ~/.aws/credentials and adding `credential_process = imdsd credential-process PROFILE` to the profile in ~/.aws/config; or, with `--to systemd-creds`, into encrypted systemd credentials for the system service. Never prints a key; running it again changes nothing'
complete -c imdsd -n "__fish_imdsd_using_subcommand help; and not __fish_seen_subcommand_from run check mfa refresh status exec env credential-process login health setup import rotate completions help" -f -a "rotate" -d 'Rotate a profile\'s IAM access key (as `aws-vault rotate`): create a new key with the current one, store it where the old one lives (the Secret Service or ~/.aws/credentials), check it works, delete the old key, and refresh the running daemon\'s roles that use it. If any step fails, the old key stays in place and usable'
complete -c imdsd -n "__fish_imdsd_using_subcommand help; and not __fish_seen_subcommand_from run check mfa refresh status exec env credential-process login health setup import rotate completions help" -f -a "completions" -d 'Print a shell completion script, e.g. `imdsd completions bash > ~/.local/share/bash-completion/completions/imdsd`'
complete -c imdsd -n "__fish_imdsd_using_subcommand help; and not __fish_seen_subcommand_from run check mfa refresh status exec env credential-process login health setup import rotate completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
