# bash completion for snapbridge(1): commands, options and their values.
#
# It reads the tool's own --help when it completes (as bash-completion's
# _longopt does), so it knows exactly the commands and options of the
# snapbridge it completes for, and cannot drift from them. In --help, an
# option line is "  --name VALUE  what it does": a VALUE of PATH, FILE or
# IMAGE completes file names, PID process ids, "a|b" one of the words.

# The option lines of `snapbridge [CMD] --help`, one "--name VALUE" per line.
_snapbridge_options()
{
	local line re='^  (--[a-z0-9-]+)(\[=[A-Za-z]+\])?( ([^ ]+))?'
	while IFS= read -r line; do
		[[ $line =~ $re ]] && printf '%s %s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[4]}"
	done < <("$@" --help 2>/dev/null)
}

_snapbridge()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	local tool=${COMP_WORDS[0]} cmd= i word value name line
	COMPREPLY=()
	for ((i = 1; i < COMP_CWORD; i++)); do
		if [[ ${COMP_WORDS[i]} != -* ]]; then
			cmd=${COMP_WORDS[i]}
			break
		fi
	done
	if [[ -z $cmd || $cmd == help ]]; then
		[[ -n $cmd && $COMP_CWORD -gt $((i + 1)) ]] && return
		local cmds=
		while IFS= read -r line; do
			[[ $line =~ ^\ \ ([a-z][a-z0-9-]*)\ \  ]] && cmds+=" ${BASH_REMATCH[1]}"
		done < <("$tool" --help 2>/dev/null)
		if [[ -z $cmd && $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--help --version" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$cmds" -- "$cur"))
		fi
		return
	fi
	# The value of the option before the cursor, when it takes one.
	if [[ $prev == --* && $cur != -* ]]; then
		while read -r name value; do
			[[ $name == "$prev" && -n $value ]] || continue
			case $value in
			PATH | FILE | IMAGE) COMPREPLY=($(compgen -f -- "$cur")) ;;
			PID) COMPREPLY=($(compgen -W "$(ls /proc | grep -E '^[0-9]+$')" -- "$cur")) ;;
			*'|'*) COMPREPLY=($(compgen -W "${value//|/ }" -- "$cur")) ;;
			esac
			return
		done < <(_snapbridge_options "$tool" "$cmd")
	fi
	if [[ $cur == -* ]]; then
		local opts=
		while read -r name value; do
			opts+=" $name"
		done < <(_snapbridge_options "$tool" "$cmd")
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
	fi
}
complete -F _snapbridge snapbridge
