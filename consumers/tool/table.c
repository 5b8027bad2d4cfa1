/*
 * consumers/tool/table.c - tables whose columns fit their content.
 *
 * Rows are buffered until sb_table_flush(); each column is then as wide
 * as its widest cell so far (a 63-byte tag widens the TAG column, a short
 * run keeps it narrow). A follower flushes every round: when a round
 * widens a column, the header is printed again above the wider rows, as
 * vmstat repeats its header, so every block lines up under its own
 * header. A row may end in free text that spans the remaining columns.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

struct sb_table_row {
	size_t ncells;
	char *cells[SB_TABLE_MAX_COLS];
	char *rest; /* free text after the cells, or NULL */
};

void sb_table_init(struct sb_table *t, FILE *out, size_t ncols, const char *const names[],
		   const char *align)
{
	memset(t, 0, sizeof(*t));
	t->out = out;
	t->ncols = ncols < SB_TABLE_MAX_COLS ? ncols : SB_TABLE_MAX_COLS;
	for (size_t i = 0; i < t->ncols; i++) {
		t->names[i] = names[i];
		t->right[i] = align && align[i] == 'r';
		t->width[i] = strlen(names[i]);
	}
}

static void free_row(struct sb_table_row *r)
{
	for (size_t i = 0; i < r->ncells; i++)
		free(r->cells[i]);
	free(r->rest);
}

int sb_table_row(struct sb_table *t, size_t ncells, const char *const cells[], const char *rest)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct sb_table_row *rows = realloc(t->rows, cap * sizeof(*rows));

		if (!rows)
			return -ENOMEM;
		t->rows = rows;
		t->cap = cap;
	}
	struct sb_table_row *r = &t->rows[t->nrows];
	memset(r, 0, sizeof(*r));
	r->ncells = ncells < t->ncols ? ncells : t->ncols;
	for (size_t i = 0; i < r->ncells; i++)
		if (!(r->cells[i] = strdup(cells[i] ? cells[i] : ""))) {
			r->ncells = i;
			free_row(r);
			return -ENOMEM;
		}
	if (rest && !(r->rest = strdup(rest))) {
		free_row(r);
		return -ENOMEM;
	}
	t->nrows++;
	return 0;
}

static void print_cells(struct sb_table *t, size_t n, char *const cells[], const char *rest)
{
	for (size_t i = 0; i < n; i++) {
		bool last = i + 1 == n && !rest;
		int w = (int)t->width[i];

		if (t->right[i])
			fprintf(t->out, "%*s", w, cells[i]);
		else if (last)
			fputs(cells[i], t->out); /* no trailing blanks */
		else
			fprintf(t->out, "%-*s", w, cells[i]);
		if (!last)
			fputs("  ", t->out);
	}
	if (rest)
		fputs(rest, t->out);
	fputc('\n', t->out);
}

int sb_table_flush(struct sb_table *t)
{
	bool wider = false;

	for (size_t r = 0; r < t->nrows; r++)
		for (size_t i = 0; i < t->rows[r].ncells; i++) {
			/* A row's last cell with nothing after it may run past its column. */
			size_t len = strlen(t->rows[r].cells[i]);

			if (len > t->width[i]) {
				t->width[i] = len;
				wider = true;
			}
		}
	if (t->nrows && (!t->header_done || wider)) {
		if (t->header_done)
			fputc('\n', t->out);
		print_cells(t, t->ncols, (char *const *)t->names, NULL);
		t->header_done = true;
	}
	for (size_t r = 0; r < t->nrows; r++) {
		print_cells(t, t->rows[r].ncells, t->rows[r].cells, t->rows[r].rest);
		free_row(&t->rows[r]);
	}
	t->nrows = 0;
	return ferror(t->out) ? (errno ? -errno : -EIO) : 0;
}

void sb_table_free(struct sb_table *t)
{
	for (size_t r = 0; r < t->nrows; r++)
		free_row(&t->rows[r]);
	free(t->rows);
	t->rows = NULL;
	t->nrows = t->cap = 0;
}
