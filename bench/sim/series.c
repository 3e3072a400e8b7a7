/* series.c: writes a run's time series (struct sim_result.series) as CSV and as one
 * self-contained HTML page of inline SVG plots (no script, no external CSS or fonts), so
 * a person can look at a scenario rather than read it. Only output, after the runs. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "series.h"

/* The values a panel plots, per bin: NAN where there is nothing to plot. */
enum series_metric {
	SERIES_AUTH = 0,  /* % authorised of the bin's issuer answers */
	SERIES_CHARGES,   /* issuer answers per second */
	SERIES_SHARE,     /* % of the bin's creations to backend `key` */
	SERIES_SHED,      /* sheds of class `key` per second */
	SERIES_429,       /* upstream 429s per second */
};

static double series_value(const struct sim_result *x, uint32_t i, enum series_metric m, int key)
{
	const struct sim_bin *b = &x->series[i];
	double dt = x->series_bin_s;

	switch (m) {
	case SERIES_AUTH:    return b->ok + b->declined ? 100.0 * b->ok / (b->ok + b->declined) : NAN;
	case SERIES_CHARGES: return (b->ok + b->declined) / dt;
	case SERIES_SHARE:   return b->created ? 100.0 * b->to[key] / b->created : NAN;
	case SERIES_SHED:    return b->shed[key] / dt;
	default:             return b->up429 / dt;
	}
}

/* Bins of the scenario's duration (the last bin, which holds the drain, is left out). */
static uint32_t series_bins(const struct sim_result *x)
{
	return x->nbins > 1 ? x->nbins - 1 : x->nbins;
}

/* A JSON string: quotes and backslashes escaped, control characters left out. */
void series_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if ((unsigned char)*s >= 0x20)
			fputc(*s, f);
	}
	fputc('"', f);
}

static void series_rows(struct series_out *o, const struct sim_scenario *sc, const struct sim_result *x,
                        const char *strat, enum series_metric m, int key, const char *label)
{
	uint32_t i;

	for (i = 0; i < series_bins(x); i++) {
		double v = series_value(x, i, m, key);

		if (isnan(v))
			continue;
		if (!o->json) {
			fprintf(o->f, "%s,%s,%g,%s,%.4f\n", sc->name, strat, i * x->series_bin_s, label, v);
			continue;
		}
		/* the CSV's columns and number texts, one object per row */
		fprintf(o->f, "%s{\"scenario\":", o->rows++ ? ",\n" : "\n");
		series_json_str(o->f, sc->name);
		fprintf(o->f, ",\"strategy\":");
		series_json_str(o->f, strat);
		fprintf(o->f, ",\"t_s\":%g,\"series\":", i * x->series_bin_s);
		series_json_str(o->f, label);
		fprintf(o->f, ",\"value\":%.4f}", v);
	}
}

void series_write(struct series_out *o, const struct sim_scenario *sc, const struct sim_result *res,
                  const char *const *names)
{
	char label[SIM_NAME + 16];
	int s, k;

	if (!o->json && o->scenarios++ == 0)
		fprintf(o->f, "scenario,strategy,t_s,series,value\n");
	else if (o->json && o->scenarios++ == 0)
		fprintf(o->f, "{\"columns\":[\"scenario\",\"strategy\",\"t_s\",\"series\",\"value\"],\"rows\":[");
	for (s = 0; s < SIM_S_COUNT; s++) {
		const struct sim_result *x = &res[s];

		if (!x->ran || !x->series)
			continue;
		series_rows(o, sc, x, names[s], SERIES_AUTH, 0, "auth_rate");
		series_rows(o, sc, x, names[s], SERIES_CHARGES, 0, "charges");
		for (k = 0; k < sc->nbackends; k++) {
			snprintf(label, sizeof(label), "share:%s", sc->backends[k].name);
			series_rows(o, sc, x, names[s], SERIES_SHARE, k, label);
		}
		for (k = 0; k < sc->nclasses; k++) {
			snprintf(label, sizeof(label), "shed:%s", sc->classes[k].name);
			series_rows(o, sc, x, names[s], SERIES_SHED, k, label);
		}
		series_rows(o, sc, x, names[s], SERIES_429, 0, "upstream_429");
	}
}

void series_end(struct series_out *o)
{
	if (!o->json)
		return;
	if (o->scenarios == 0)
		fprintf(o->f, "{\"columns\":[\"scenario\",\"strategy\",\"t_s\",\"series\",\"value\"],\"rows\":[");
	fprintf(o->f, "%s]}\n", o->rows ? "\n" : "");
}

/* ---- SVG -------------------------------------------------------------------------------- */

#define SERIES_W 340
#define SERIES_H 190
#define SERIES_ML 44  /* margins: left (y labels), right, top (title, legend), bottom (x labels) */
#define SERIES_MR 8
#define SERIES_MT 34
#define SERIES_MB 22

static const char *const series_colors[] = { "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
	"#e377c2", "#17becf" };

/* Text for XML: the few characters that would break it are replaced. */
static void series_xml(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '<')
			fputs("&lt;", f);
		else if (*s == '>')
			fputs("&gt;", f);
		else if (*s == '&')
			fputs("&amp;", f);
		else if (*s == '"')
			fputs("&quot;", f);
		else
			fputc(*s, f);
	}
}

/* A "nice" tick step for a span (1, 2 or 5 × 10^k, about n ticks). */
static double series_step(double span, int n)
{
	double raw = span / n, p = pow(10, floor(log10(raw))), m = raw / p;

	return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

struct series_panel {
	const char *title, *unit;
	enum series_metric metric;
	int nkeys;                 /* lines: keys 0..nkeys-1 */
	const char *labels[SIM_MAX_CLASSES > SIM_MAX_BACKENDS ? SIM_MAX_CLASSES : SIM_MAX_BACKENDS];
	bool zero_based;           /* y from 0; else from the data's minimum */
	double ymax_fixed;         /* > 0: the y axis ends there */
};

static void series_panel_svg(FILE *f, const struct sim_scenario *sc, const struct sim_result *x,
                             const struct series_panel *p)
{
	uint32_t n = series_bins(x), i;
	double ymin = INFINITY, ymax = -INFINITY, xmax = n * x->series_bin_s, step, t;
	double pw = SERIES_W - SERIES_ML - SERIES_MR, ph = SERIES_H - SERIES_MT - SERIES_MB;
	int k, lx;

	for (k = 0; k < p->nkeys; k++)
		for (i = 0; i < n; i++) {
			double v = series_value(x, i, p->metric, k);

			if (!isnan(v)) {
				ymin = v < ymin ? v : ymin;
				ymax = v > ymax ? v : ymax;
			}
		}
	if (p->zero_based || ymin > ymax)
		ymin = 0;
	if (p->ymax_fixed > 0)
		ymax = p->ymax_fixed;
	if (!(ymax > ymin))
		ymax = ymin + 1;
	step = series_step(ymax - ymin, 4);
	ymin = floor(ymin / step) * step;
	ymax = ceil(ymax / step) * step;
#define SX(v) (SERIES_ML + (v) / xmax * pw)
#define SY(v) (SERIES_MT + ph - ((v) - ymin) / (ymax - ymin) * ph)
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
	           "font-family=\"sans-serif\" font-size=\"10\">\n",
	        SERIES_W, SERIES_H, SERIES_W, SERIES_H);
	fprintf(f, "<text x=\"%d\" y=\"12\" font-size=\"12\" font-weight=\"bold\">", SERIES_ML);
	series_xml(f, p->title);
	fprintf(f, " <tspan font-weight=\"normal\" font-size=\"10\">(%s)</tspan></text>\n", p->unit);
	for (k = 0, lx = SERIES_ML; k < p->nkeys && p->nkeys > 1; k++) {
		fprintf(f, "<text x=\"%d\" y=\"26\" fill=\"%s\">", lx, series_colors[k % 8]);
		series_xml(f, p->labels[k]);
		fprintf(f, "</text>\n");
		lx += 8 + 6 * (int)strlen(p->labels[k]);
	}
	/* incidents: shaded, named in a tooltip */
	for (k = 0; k < sc->nincidents; k++) {
		const struct sim_incident *in = &sc->incidents[k];
		double x0 = in->start_s < xmax ? in->start_s : xmax, x1 = in->end_s < xmax ? in->end_s : xmax;

		fprintf(f, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%.1f\" fill=\"#f4b6b6\" fill-opacity=\"0.45\">"
		           "<title>",
		        SX(x0), SERIES_MT, SX(x1) - SX(x0), ph);
		series_xml(f, in->name);
		fprintf(f, " %g-%g s</title></rect>\n", in->start_s, in->end_s);
	}
	fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#888\"/>\n", SERIES_ML,
	        SERIES_MT, pw, ph);
	for (t = ymin; t <= ymax + step / 2; t += step)
		fprintf(f, "<line x1=\"%d\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
		           "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
		        SERIES_ML, SERIES_ML + pw, SY(t), SY(t), SERIES_ML - 3, SY(t) + 3, t);
	step = series_step(xmax, 5);
	for (t = 0; t <= xmax + step / 100; t += step)
		fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g s</text>\n", SX(t), SERIES_H - 8, t);
	/* one polyline per run of bins with a value */
	for (k = 0; k < p->nkeys; k++) {
		bool open = false;

		for (i = 0; i < n; i++) {
			double v = series_value(x, i, p->metric, k);

			if (isnan(v)) {
				if (open)
					fprintf(f, "\"/>\n");
				open = false;
				continue;
			}
			if (!open)
				fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.2\" points=\"", series_colors[k % 8]);
			open = true;
			fprintf(f, "%.1f,%.1f ", SX((i + 0.5) * x->series_bin_s), SY(v > ymax ? ymax : v));
		}
		if (open)
			fprintf(f, "\"/>\n");
	}
#undef SX
#undef SY
	fprintf(f, "</svg>\n");
}

int series_html(const char *path, const struct sim_scenario *sc, const struct sim_result *res,
                const char *const *names, char *err, size_t errlen)
{
	struct series_panel auth = { "authorisation rate", "%", SERIES_AUTH, 1, { "auth" }, false, 100 };
	struct series_panel share = { "share per backend", "% of creations", SERIES_SHARE, sc->nbackends, { NULL }, true, 100 };
	struct series_panel shed = { "shed per class", "/s", SERIES_SHED, sc->nclasses, { NULL }, true, 0 };
	struct series_panel r429 = { "upstream 429s", "/s", SERIES_429, 1, { "429" }, true, 0 };
	FILE *f = fopen(path, "w");
	int s, k;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	for (k = 0; k < sc->nbackends; k++)
		share.labels[k] = sc->backends[k].name;
	for (k = 0; k < sc->nclasses; k++)
		shed.labels[k] = sc->classes[k].name;
	fprintf(f, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
	series_xml(f, sc->name);
	fprintf(f, "</title>\n<style>body{font-family:sans-serif;margin:16px} .row{display:flex;flex-wrap:wrap;gap:6px} "
	           "h2{font-size:15px;margin:14px 0 4px} p{font-size:13px;margin:4px 0}</style></head><body>\n<h1>");
	series_xml(f, sc->name);
	fprintf(f, "</h1>\n<p>");
	series_xml(f, sc->description);
	fprintf(f, "</p>\n<p>%g s simulated, seed %llu, bins of %g s; shaded: incidents (", sc->duration_s,
	        (unsigned long long)sc->seed, res[0].series_bin_s > 0 ? res[0].series_bin_s : res[SIM_S_ORACLE].series_bin_s);
	for (k = 0; k < sc->nincidents; k++) {
		fprintf(f, "%s", k ? ", " : "");
		series_xml(f, sc->incidents[k].name);
		fprintf(f, " %g-%g s", sc->incidents[k].start_s, sc->incidents[k].end_s);
	}
	fprintf(f, "%s)</p>\n", sc->nincidents ? "" : "none");
	for (s = 0; s < SIM_S_COUNT; s++) {
		const struct sim_result *x = &res[s];

		if (!x->ran || !x->series)
			continue;
		fprintf(f, "<h2>");
		series_xml(f, names[s]);
		fprintf(f, "</h2>\n<div class=\"row\">\n");
		series_panel_svg(f, sc, x, &auth);
		series_panel_svg(f, sc, x, &share);
		series_panel_svg(f, sc, x, &shed);
		series_panel_svg(f, sc, x, &r429);
		fprintf(f, "</div>\n");
	}
	fprintf(f, "</body></html>\n");
	if (ferror(f) | fclose(f)) {
		snprintf(err, errlen, "%s: write failed", path);
		return -1;
	}
	return 0;
}
